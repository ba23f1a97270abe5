//! Lambda function `connect`: builds the app once at cold start, then serves each
//! WebSocket `$connect` event with `coedit::handlers::connect`.

use coedit::handlers::connect;
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
            Ok::<_, Error>(connect::handle(app, event.payload).await)
        },
    ))
    .await
}
