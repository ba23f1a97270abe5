//! What the SAM template promises operators, read from `infra/template.yaml` as
//! deployed: every function watched by the alarms and the dashboard, access logs
//! that never record a token, API keys out of reach of the functions that do not
//! read them, the table protected, one sweeper at a time, limits wired to the
//! functions. (`cfn-lint` checks the template's form in CI; this checks intent.)

use serde_yaml::Value;

fn template() -> (String, Value) {
    let path = coedit_tests::repo_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc = serde_yaml::from_str(&text).unwrap();
    (text, doc)
}

fn resources(doc: &Value) -> Vec<(String, &Value)> {
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v))
        .collect()
}

fn of_type<'a>(doc: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    resources(doc)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .collect()
}

/// A value as YAML text, tags included (`!Ref X`), for looking inside.
fn text_of(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap()
}

#[test]
fn every_function_is_watched_by_the_alarms_and_the_dashboard_and_logs() {
    let (_, doc) = template();
    let functions = of_type(&doc, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 9);
    let alarm = |name: &str| text_of(&doc["Resources"][name]);
    let dashboard = text_of(&doc["Resources"]["Dashboard"]);
    let body = match &doc["Resources"]["Dashboard"]["Properties"]["DashboardBody"] {
        Value::Tagged(sub) => sub.value.as_str().unwrap().to_owned(),
        other => panic!("the dashboard body is a !Sub: {other:?}"),
    };
    let log_groups: Vec<String> = of_type(&doc, "AWS::Logs::LogGroup")
        .iter()
        .map(|(_, g)| text_of(&g["Properties"]["LogGroupName"]))
        .collect();
    for (name, _) in &functions {
        for a in ["FunctionErrorsAlarm", "FunctionThrottlesAlarm"] {
            assert!(
                alarm(a).contains(&format!("!Ref {name}")),
                "{a} misses {name}"
            );
        }
        assert!(
            dashboard.contains(&format!("${{{name}}}")),
            "the dashboard misses {name}"
        );
        assert!(
            log_groups
                .iter()
                .any(|g| g.contains(&format!("${{{name}}}"))),
            "{name} has no log group with a retention"
        );
    }
    for a in [
        "TableThrottlesAlarm",
        "RestApiErrorsAlarm",
        "WebSocketErrorsAlarm",
        "SweeperFailuresAlarm",
    ] {
        let props = &doc["Resources"][a]["Properties"];
        assert!(
            text_of(&props["AlarmActions"]).contains("AlarmTopicArn"),
            "{a}"
        );
    }
    // The dashboard shows every metric the functions write.
    for metric in [
        "Changes",
        "FanOut",
        "Refusals",
        "Conflicts",
        "GoneConnections",
        "SeatRefusals",
        "StoreFaults",
        "SweepEnded",
        "SweepErased",
        "SweepDropped",
        "SweepUpdated",
        "SweepFailures",
    ] {
        let named = body.contains(&format!("\"{metric}\""))
            || body.contains(&format!("MetricName=\\\"{metric}\\\""));
        assert!(named, "{metric}");
    }
}

#[test]
fn access_logs_never_record_a_token() {
    let (_, doc) = template();
    let formats: Vec<String> = ["HttpApi", "WebSocketStage"]
        .iter()
        .map(|r| {
            doc["Resources"][*r]["Properties"]["AccessLogSettings"]["Format"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for format in &formats {
        let lower = format.to_lowercase();
        for leak in [
            "querystring",
            "$request",
            "authorizer",
            "header",
            "$context.path",
        ] {
            assert!(!lower.contains(leak), "{leak} in {format}");
        }
        assert!(format.contains("$context.requestId"));
        serde_json::from_str::<serde_json::Value>(format).expect("one JSON object a line");
    }
}

#[test]
fn only_the_functions_that_read_api_keys_may_and_none_may_write_them() {
    let (_, doc) = template();
    let readers = [
        "CreateSessionFunction",
        "GetSessionFunction",
        "JoinSessionFunction",
    ];
    for (name, function) in of_type(&doc, "AWS::Serverless::Function") {
        let policies = text_of(&function["Properties"]["Policies"]);
        let denies: Vec<&Value> = function["Properties"]["Policies"][0]["Statement"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Deny")
            .collect();
        assert_eq!(denies.len(), 1, "{name}: {policies}");
        let deny = denies[0];
        assert_eq!(
            deny["Condition"]["ForAnyValue:StringLike"]["dynamodb:LeadingKeys"][0], "KEY#*",
            "{name}"
        );
        let actions = text_of(&deny["Action"]);
        if readers.contains(&name.as_str()) {
            for write in ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"] {
                assert!(actions.contains(write), "{name} may {write} API keys");
            }
        } else {
            assert!(actions.contains("dynamodb:*"), "{name} may read API keys");
        }
    }
}

#[test]
fn the_table_is_protected_and_one_sweeper_runs_at_a_time() {
    let (_, doc) = template();
    let table = &doc["Resources"]["SessionsTable"];
    assert_eq!(table["Properties"]["DeletionProtectionEnabled"], true);
    assert_eq!(table["DeletionPolicy"], "Retain");
    let sweeper = &doc["Resources"]["SweeperFunction"]["Properties"];
    assert_eq!(sweeper["ReservedConcurrentExecutions"], 1);
    assert_eq!(sweeper["EventInvokeConfig"]["MaximumRetryAttempts"], 0);
    // Every other function has its reserved concurrency parameter.
    for (name, function) in of_type(&doc, "AWS::Serverless::Function") {
        if name != "SweeperFunction" {
            let reserved = text_of(&function["Properties"]["ReservedConcurrentExecutions"]);
            assert!(reserved.contains("Concurrency"), "{name}: {reserved}");
        }
    }
}

#[test]
fn the_limits_reach_the_functions_and_the_apis_are_throttled() {
    let (text, doc) = template();
    let env = text_of(&doc["Globals"]["Function"]["Environment"]["Variables"]);
    // (COEDIT_METRICS_NAMESPACE is read by `telemetry`, before the configuration.)
    assert!(env.contains("COEDIT_METRICS_NAMESPACE"));
    for variable in [
        "COEDIT_MAX_TEMPLATE_BYTES",
        "COEDIT_CONNECTION_MESSAGES_PER_SECOND",
        "COEDIT_CONNECTION_MESSAGE_BURST",
        "COEDIT_MAX_BODY_BYTES",
    ] {
        assert!(env.contains(variable), "{variable}");
        assert!(
            coedit_tests::config_variables()
                .iter()
                .any(|v| v == variable),
            "{variable} is not read by the functions"
        );
    }
    let http = &doc["Resources"]["HttpApi"]["Properties"];
    assert!(text_of(&http["DefaultRouteSettings"]).contains("ThrottlingRateLimit"));
    assert!(text_of(&http["RouteSettings"]).contains("POST /v1/coedit/session/{id}/changes"));
    let ws = &doc["Resources"]["WebSocketStage"]["Properties"];
    assert!(text_of(&ws["DefaultRouteSettings"]).contains("ThrottlingRateLimit"));
    assert!(text_of(&ws["RouteSettings"]).contains("$connect"));
    assert!(text.contains("Tracing: !Ref Tracing"));
}
