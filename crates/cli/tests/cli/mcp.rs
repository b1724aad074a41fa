//! The MCP server with a real client: the official Python SDK (`mcp_client.py`, installed by
//! `scripts/test.sh`) over stdio (`groundwork mcp`) and streamable HTTP (`/mcp` of `serve`).
//! Tools act for the caller, so permissions and the audit log apply as everywhere else.

use crate::require_model;
use crate::support::{TestHome, stop_with_sigterm, write};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Python with the MCP SDK, or `None` to skip outside CI.
fn python() -> Option<String> {
    match std::env::var("GROUNDWORK_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "GROUNDWORK_TEST_PYTHON is not set"
            );
            eprintln!("skipping: GROUNDWORK_TEST_PYTHON (a Python with the mcp package) is not set");
            None
        }
    }
}

/// Runs one client session; `args` select the transport.
fn session(python: &str, env: &TestHome, args: &[&str], calls: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/mcp_client.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .env("GROUNDWORK_HOME", &env.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs the MCP client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(calls.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "MCP client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "bad client output: {e}: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn uris(result: &Value) -> Vec<String> {
    result["structured"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn mcp_tools_over_stdio_and_http_act_for_the_caller() {
    let model = require_model!();
    let Some(python) = python() else { return };
    let env = TestHome::new(model);
    let docs = env.folder("docs");
    write(
        &docs.join("hr/leave.md"),
        "# Parental leave\n\nEmployees get twenty weeks of paid parental leave after a birth or adoption.\n",
    );
    write(
        &docs.join("finance/budget.md"),
        "# Budget\n\nThe confidential budget for next year cuts travel and leave spending by a third.\n",
    );
    env.ok(&["kb", "create", "handbook"]);
    env.ok(&["source", "add", "handbook", docs.to_str().unwrap()]);
    env.ok(&["sync", "handbook"]);
    env.ok(&["user", "add", "alice"]);
    env.ok(&[
        "grant",
        "add",
        "--user",
        "alice",
        "--read",
        docs.join("hr").to_str().unwrap(),
    ]);
    // A tables knowledge base: alice may read `orders`, eu rows only; `salaries` not at all.
    let lake = env.folder("lake");
    write(
        &lake.join("orders/part-0.csv"),
        "id,region,amount\n1,eu,10\n2,us,20\n3,eu,30\n",
    );
    write(&lake.join("salaries.csv"), "name,salary\nbob,100\n");
    env.ok(&["kb", "create", "sales", "--kind", "tables"]);
    env.ok(&["source", "add", "sales", lake.to_str().unwrap()]);
    env.ok(&["sync", "sales"]);
    env.ok(&[
        "grant",
        "add",
        "--user",
        "alice",
        "--read",
        lake.join("orders").to_str().unwrap(),
        "--row-filter",
        "region = 'eu'",
    ]);
    let alice = env.json(&["token", "create", "--user", "alice"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let calls = json!([
        { "name": "list_knowledge_bases" },
        { "name": "search", "arguments": { "knowledge_base": "handbook", "query": "leave spending budget", "k": 5 } },
        { "name": "ask", "arguments": { "knowledge_base": "handbook", "question": "How long is parental leave?" } },
        { "name": "search", "arguments": { "knowledge_base": "nope", "query": "x" } },
        { "name": "search", "arguments": { "knowledge_base": "handbook", "query": "x", "k": 0 } },
        { "name": "search", "arguments": { "knowledge_base": "handbook" } },
        { "name": "list_tables", "arguments": { "knowledge_base": "sales" } },
        { "name": "run_sql", "arguments": { "knowledge_base": "sales", "sql": "SELECT id, amount FROM orders ORDER BY id" } },
        { "name": "run_sql", "arguments": { "knowledge_base": "sales", "sql": "SELECT * FROM salaries" } },
        { "name": "run_sql", "arguments": { "knowledge_base": "sales", "sql": "DROP TABLE orders" } },
        { "name": "describe_table", "arguments": { "knowledge_base": "sales", "table": "orders" } },
        { "name": "search_tables", "arguments": { "knowledge_base": "sales", "question": "salaries of employees" } }
    ]);
    let check = |out: &Value| {
        assert_eq!(out["server"], "groundwork", "{out}");
        assert_eq!(
            out["tools"],
            json!([
                "ask",
                "describe_table",
                "list_knowledge_bases",
                "list_tables",
                "run_sql",
                "search",
                "search_tables"
            ])
        );
        let results = out["results"].as_array().unwrap();
        assert_eq!(
            results[0]["structured"]["knowledge_bases"],
            json!(["handbook", "sales"])
        );
        // Tables: only what alice may read, through her row filter.
        let tables = &results[6]["structured"]["tables"];
        assert_eq!(tables.as_array().unwrap().len(), 1, "{tables}");
        assert_eq!(tables[0]["name"], "orders");
        assert_eq!(
            results[7]["structured"]["rows"],
            json!([{"id": 1, "amount": 10}, {"id": 3, "amount": 30}])
        );
        assert_eq!(results[8]["structured"]["code"], "not_found", "{}", results[8]);
        assert_eq!(
            results[9]["structured"]["code"], "invalid_request",
            "{}",
            results[9]
        );
        assert!(
            results[10]["structured"]["row_filter"]
                .as_str()
                .unwrap()
                .contains("eu")
        );
        // Table discovery ranks only what alice may read.
        let found = &results[11]["structured"]["tables"];
        assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
        assert_eq!(found[0]["name"], "orders");
        // alice reads hr/ only: the budget never reaches her, whatever the query.
        let found = uris(&results[1]);
        assert!(
            !found.is_empty() && found.iter().all(|u| u.contains("/hr/")),
            "{found:?}"
        );
        assert!(!results[1]["text"].as_str().unwrap().contains("confidential"));
        let answer = results[2]["text"].as_str().unwrap();
        assert!(answer.contains("twenty weeks"), "{answer}");
        assert!(
            answer.contains("Sources:") && answer.contains("leave.md"),
            "{answer}"
        );
        for (result, code) in [
            (&results[3], "not_found"),
            (&results[4], "invalid_request"),
            (&results[5], "invalid_request"),
        ] {
            assert_eq!(result["is_error"], true, "{result}");
            assert_eq!(result["structured"]["code"], code, "{result}");
        }
    };

    // Stdio: the assistant starts `groundwork mcp` with alice's token.
    let binary = env!("CARGO_BIN_EXE_groundwork");
    let home = env.home.to_str().unwrap();
    let out = session(
        &python,
        &env,
        &["stdio", binary, "--home", home, "--token", &alice, "mcp"],
        &calls,
    );
    check(&out);

    // Streamable HTTP on the API server, authenticated per request.
    let (mut server, base) = env.serve(&[]);
    let url = format!("{base}/mcp");
    let out = session(&python, &env, &["http", &url, &alice], &calls);
    check(&out);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    for token in [None, Some("gw_not_a_real_token")] {
        let mut request = client
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
        let body: Value = response.json().unwrap();
        assert_eq!(body["code"], "unauthenticated", "{body}");
    }
    let exit = stop_with_sigterm(&mut server);
    assert!(
        exit.success(),
        "serve exited with {exit:?} with an MCP session open"
    );

    // Every tool call is in the audit log, as alice.
    let searches = env.json(&["audit", "query", "--actor", "alice", "--action", "search"]);
    let outcomes: Vec<&str> = searches
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    // Per transport: the good search, the unknown knowledge base, k = 0 (the call missing its
    // query never reaches the service).
    assert_eq!(outcomes.iter().filter(|o| **o == "ok").count(), 2, "{searches}");
    let asks = env.json(&["audit", "query", "--actor", "alice", "--action", "ask"]);
    assert_eq!(asks.as_array().unwrap().len(), 2, "{asks}");
}
