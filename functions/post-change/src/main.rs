//! Lambda function `post-change`: builds the app once at cold start, then serves
//! `POST /v1/coedit/session/{id}/changes` with `coedit::handlers::post_change`.

use coedit::handlers::post_change;
use coedit::{App, telemetry};
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_for_lambda();
    let app = App::from_lambda_env()?;
    let app = &app;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(post_change::handle(app, req).await)
    }))
    .await
}
