//! The region process's entry point: the router on Lambda when `AWS_LAMBDA_RUNTIME_API` is
//! set, and on a TCP port otherwise, with the flags of [`crate::args`].
//!
//! On Lambda the admin token and the origin secret come from Secrets Manager
//! (`TANDEM_SECRET_ID`, read once at init), so that no secret is in the function's
//! configuration; flags and environment variables still win when set. The Lambda and DynamoDB
//! parts ([`crate::lambda`]) need the `aws` feature (on by default).

use crate::args::{RegionArgs, StoreKind, init_tracing};
use crate::state::Config;
use crate::store::Store;
use anyhow::Context as _;
use tokio::net::TcpListener;

/// Runs one region until Ctrl-C/SIGTERM (or, on Lambda, forever).
pub async fn run(args: RegionArgs) -> anyhow::Result<()> {
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    init_tracing(on_lambda);
    #[cfg(feature = "aws")]
    if on_lambda {
        return crate::lambda::run(args).await;
    }
    let config = args.config();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    match args.store {
        #[cfg(feature = "embedded")]
        StoreKind::Embedded => {
            let dir = args.data_dir();
            let store = crate::store::embedded::EmbeddedStore::open(&dir, &config.region)?;
            tracing::info!(region = %config.region, addr = %args.listen, dir = %dir.display(), "region serving (embedded store)");
            serve(listener, store, config).await
        }
        #[cfg(feature = "aws")]
        StoreKind::Dynamodb => {
            let store =
                crate::store::dynamo::DynamoStore::from_env(&args.table_name, &config.region)
                    .await
                    .with_consistency(config.consistency);
            tracing::info!(region = %config.region, addr = %args.listen, table = %args.table_name, "region serving (DynamoDB)");
            serve(listener, store, config).await
        }
    }
}

async fn serve<S: Store + Clone>(
    listener: TcpListener,
    store: S,
    config: Config,
) -> anyhow::Result<()> {
    crate::server::serve(
        listener,
        crate::router(store, config),
        crate::server::shutdown_signal(),
    )
    .await?;
    tracing::info!("region stopped");
    Ok(())
}
