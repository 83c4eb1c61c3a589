//! For this crate's unit tests: an HTTP server that answers each request from its request line,
//! with the status and headers a closure gives (an edge as the watcher and the confirmations see
//! it, without the local stack).

use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the server answers: the status and the headers, from the request line.
pub type Answer = (u16, Vec<(&'static str, String)>);

/// Serves `answer` on a free port of 127.0.0.1 until the test ends; the base URL.
pub async fn serve(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> String {
    let answer = Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                let (status, headers) = answer(&line);
                let mut text = format!("HTTP/1.1 {status} X\r\n");
                for (name, value) in headers {
                    text.push_str(&format!("{name}: {value}\r\n"));
                }
                text.push_str("content-length: 2\r\nconnection: close\r\n\r\n{}");
                let _ = conn.write_all(text.as_bytes()).await;
            });
        }
    });
    base
}
