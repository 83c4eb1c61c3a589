//! A hello-world `lambda_http` function, built like the real one: the baseline that
//! `tandem bench` starts next to `tandem-api` to compare Lambda init (a local stand-in).

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_req: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
