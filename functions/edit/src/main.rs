//! Lambda function `edit`: builds the app once at cold start (and keeps the
//! templates it builds between events), then serves the WebSocket routes `edit`,
//! `lock`, `unlock`, `sync` and `$default` with `coedit::handlers::edit`.

use coedit::handlers::edit;
use coedit::handlers::websocket::WebSocketEvent;
use coedit::{App, telemetry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_for_lambda();
    let app = App::from_lambda_env()?;
    let app = &app;
    run(service_fn(
        move |event: LambdaEvent<WebSocketEvent>| async move {
            Ok::<_, Error>(edit::handle(app, event.payload).await)
        },
    ))
    .await
}
