//! Lambda function `join-session`: builds the app once at cold start, then serves each
//! HTTP API event with `coedit::handlers::join_session`.

use coedit::handlers::join_session;
use coedit::{App, telemetry};
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_for_lambda();
    let app = App::from_lambda_env()?;
    let app = &app;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(join_session::handle(app, req).await)
    }))
    .await
}
