//! Lambda function `sweeper`: run every minute by a schedule; erases expired
//! sessions and drops stale connections with `coedit::handlers::sweeper`.

use coedit::handlers::sweeper::{self, ScheduleEvent};
use coedit::{App, telemetry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_for_lambda();
    let app = App::from_lambda_env()?;
    let app = &app;
    run(service_fn(
        move |_: LambdaEvent<ScheduleEvent>| async move { Ok::<_, Error>(sweeper::run(app).await) },
    ))
    .await
}
