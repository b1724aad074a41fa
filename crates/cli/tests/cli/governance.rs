//! Identities, grants, ACLs, tokens and the audit chain, end to end through the binary.

use crate::require_model;
use crate::support::{TestHome, file_name, write};
use std::collections::BTreeSet;

/// finance/ (four documents, one restricted to carol by its ACL), hr/ (two), and a look-alike
/// folder finance-archive/ that a grant on finance/ must not cover.
fn corpus(env: &TestHome) -> std::path::PathBuf {
    let docs = env.folder("org");
    for i in 0..4 {
        write(
            &docs.join(format!("finance/budget{i}.txt")),
            format!("Budget report {i}: the travel budget and expense policy for the quarter."),
        );
    }
    write(
        &docs.join("finance/budget3.txt.metadata.json"),
        r#"{"metadataAttributes": {"kind": "board"}, "access": {"read": ["user:carol"]}}"#,
    );
    for i in 0..2 {
        write(
            &docs.join(format!("hr/leave{i}.txt")),
            format!("Leave policy {i}: travel budget questions go to the expense desk."),
        );
    }
    write(
        &docs.join("finance-archive/old.txt"),
        "Archived budget report on travel and expense policy.",
    );
    env.ok(&["kb", "create", "org"]);
    env.ok(&["source", "add", "org", docs.to_str().unwrap()]);
    env.ok(&["sync", "org"]);
    docs
}

fn names(env: &TestHome, args: &[&str]) -> BTreeSet<String> {
    let response = env.json(args);
    TestHome::hit_uris(&response)
        .iter()
        .map(|uri| file_name(uri).to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn access_follows_grants_acls_and_expiry() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = corpus(&env);
    for user in ["alice", "bob", "carol", "dave"] {
        env.ok(&["user", "add", user]);
    }
    env.ok(&["group", "add", "finance"]);
    env.ok(&["group", "add-member", "finance", "alice"]);
    env.ok(&["group", "add-member", "finance", "carol"]);
    let finance = docs.join("finance");
    env.ok(&[
        "grant",
        "add",
        "--group",
        "finance",
        "--read",
        finance.to_str().unwrap(),
    ]);
    // The same location in URI form and with a trailing slash means the same prefix.
    let hr_uri = format!("file://{}/hr/", docs.canonicalize().unwrap().display());
    env.ok(&[
        "grant", "add", "--user", "bob", "--read", &hr_uri, "--until", "1h",
    ]);

    let query = ["search", "org", "travel budget expense policy", "-k", "10"];
    let as_user = |user: &str| {
        let mut args = vec!["--as", user];
        args.extend_from_slice(&query);
        names(&env, &args)
    };
    let finance_open = set(&["budget0.txt", "budget1.txt", "budget2.txt"]);
    assert_eq!(as_user("alice"), finance_open, "group grant, ACL hides budget3");
    let mut carol = finance_open.clone();
    carol.insert("budget3.txt".into());
    assert_eq!(as_user("carol"), carol, "the ACL names carol");
    assert_eq!(as_user("bob"), set(&["leave0.txt", "leave1.txt"]));
    assert!(as_user("dave").is_empty(), "no grant, nothing");
    assert_eq!(names(&env, &query).len(), 7, "the administrator reads everything");

    // Top-k stays full within what the user can read.
    let top2 = names(
        &env,
        &["--as", "alice", "search", "org", "travel budget", "-k", "2"],
    );
    assert_eq!(top2.len(), 2);
    assert!(top2.is_subset(&finance_open));

    // Unknown users are refused; non-administrators cannot administer.
    assert_eq!(
        env.fails(&["--as", "mallory", "search", "org", "budget"]),
        (10, "unauthenticated".into())
    );
    assert_eq!(
        env.fails(&["--as", "alice", "user", "add", "eve"]),
        (11, "forbidden".into())
    );
    assert_eq!(
        env.fails(&["--as", "alice", "grant", "add", "--user", "alice", "--read", "/"]),
        (11, "forbidden".into())
    );

    // Bob's grant expires between two queries, with no sync in between: the same binary, run
    // with its clock moved (debug builds only), sees it live at 59 minutes and gone at 61.
    let bob_at = |minutes: i64| {
        let skew = (minutes * 60_000).to_string();
        let mut args = vec!["--as", "bob"];
        args.extend_from_slice(&query);
        let response = env.json_with_env(&args, &[("GROUNDWORK_TEST_CLOCK_SKEW_MS", &skew)]);
        TestHome::hit_uris(&response).len()
    };
    assert_eq!(bob_at(59), 2, "the grant is live before its end");
    assert_eq!(bob_at(61), 0, "the grant expired");
    assert_eq!(
        as_user("bob"),
        set(&["leave0.txt", "leave1.txt"]),
        "and only then"
    );

    // Revoking alice's group grant takes effect on the next query.
    let grants = env.json(&["grant", "list"]);
    let finance_grant = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grantee"]["name"] == "finance")
        .unwrap();
    env.ok(&["grant", "revoke", &finance_grant["id"].to_string()]);
    assert!(as_user("alice").is_empty());

    // Denials and failed authentications are in the audit log.
    let denied = env.json(&["audit", "query", "--action", "user.add"]);
    assert!(
        denied
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["actor"] == "alice" && r["outcome"] == "denied")
    );
    let failed = env.json(&["audit", "query", "--action", "authenticate"]);
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["request"].as_str().unwrap().contains("mallory"))
    );
    // "Which answers used this document?"
    let budget3 = format!("file://{}/budget3.txt", finance.canonicalize().unwrap().display());
    let used = env.json(&["audit", "query", "--document", &budget3]);
    let actors: BTreeSet<String> = used
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actors,
        set(&["admin", "carol"]),
        "only carol and the administrator saw it"
    );
}

#[test]
fn tokens_authenticate_until_revoked_or_expired() {
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = corpus(&env);
    env.ok(&["user", "add", "alice"]);
    env.ok(&[
        "grant",
        "add",
        "--user",
        "alice",
        "--read",
        docs.join("hr").to_str().unwrap(),
    ]);
    let created = env.json(&["token", "create", "--user", "alice", "--name", "laptop"]);
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("gw_"));

    let search = ["search", "org", "leave policy"];
    let response = env.json_with_env(&search, &[("GROUNDWORK_TOKEN", &token)]);
    assert_eq!(TestHome::hit_uris(&response).len(), 2);
    let listed = env.json(&["token", "list", "--user", "alice"]);
    assert!(listed[0]["last_used_at"].is_i64(), "use is recorded");
    assert!(
        !listed.to_string().contains(&token[20..]),
        "the secret is never listed"
    );

    let with_token_at = |token: &str, minutes: i64| {
        let mut command = env.command(&["--json"]);
        command
            .args(search)
            .env("GROUNDWORK_TOKEN", token)
            .env("GROUNDWORK_TEST_CLOCK_SKEW_MS", (minutes * 60_000).to_string());
        let output = command.output().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (
            output.status.code().unwrap(),
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    };
    let with_token = |token: &str| with_token_at(token, 0);
    let refused = (10, "unauthenticated".to_owned());
    // A forged secret with a real id, garbage, and a truncated token.
    let forged = format!("{}{}", &token[..token.len() - 4], "AAAA");
    assert_eq!(with_token(&forged), refused);
    assert_eq!(with_token("gw_not-a-token"), refused);
    assert_eq!(with_token(&token[..token.len() - 1]), refused);

    env.ok(&["token", "revoke", &id]);
    assert_eq!(with_token(&token), refused, "revoked");

    // Expiry, with the binary's clock moved instead of sleeping (debug builds only).
    let short = env.json(&["token", "create", "--user", "alice", "--expires", "1h"]);
    let short = short["token"].as_str().unwrap();
    assert_eq!(with_token_at(short, 59).0, 0, "live before its end");
    assert_eq!(with_token_at(short, 61), refused, "expired");

    // Token secrets never reach the audit log.
    let export = env.ok(&["audit", "export"]);
    assert!(!export.contains(&token[20..]));
    assert!(export.contains(&id), "token ids are recorded");
}

#[test]
fn audit_records_are_masked_chained_and_tamper_evident() {
    let model = require_model!();
    let env = TestHome::new(model);
    corpus(&env);
    let secrets = [
        "jane.doe@example.com",
        "+1 415 555 0132",
        "4111 1111 1111 1111",
        "123-45-6789",
        "GB82 WEST 1234 5698 7654 32",
        "192.168.20.31",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "password=hunter22",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    ];
    for secret in secrets {
        env.ok(&["search", "org", &format!("budget for {secret}")]);
    }
    env.ok(&[
        "ask",
        "org",
        "What is the travel budget? Mail jane.doe@example.com",
    ]);
    let export = env.ok(&["audit", "export"]);
    for secret in secrets {
        assert!(!export.contains(secret), "{secret} reached the audit log");
    }
    for placeholder in [
        "[EMAIL]",
        "[PHONE]",
        "[CREDIT_DEBIT_CARD_NUMBER]",
        "[US_SOCIAL_SECURITY_NUMBER]",
        "[INTERNATIONAL_BANK_ACCOUNT_NUMBER]",
        "[IP_ADDRESS]",
        "[AWS_ACCESS_KEY]",
        "[AWS_SECRET_KEY]",
        "[PASSWORD]",
        "[PRIVATE_KEY]",
    ] {
        assert!(export.contains(placeholder), "no {placeholder} in the export");
    }
    // Searches record what they returned, pinned to object versions, and the model used.
    let asks = env.json(&["audit", "query", "--action", "ask"]);
    let ask = &asks[0];
    let chunks: serde_json::Value = serde_json::from_str(ask["chunks"].as_str().unwrap()).unwrap();
    assert!(!chunks.as_array().unwrap().is_empty());
    assert!(chunks[0]["object_version"].is_string());
    assert!(ask["models"].as_str().unwrap().contains("all-MiniLM-L6-v2"));
    // Reading the log is on the record too: the filters and how much was returned.
    let reads = env.json(&["audit", "query", "--action", "audit.query"]);
    let last: serde_json::Value = serde_json::from_str(
        reads.as_array().unwrap().last().unwrap()["request"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (last["action"].as_str(), last["returned"].as_u64()),
        (Some("ask"), Some(asks.as_array().unwrap().len() as u64))
    );

    // Lineage: from the answer back to its chunks and their document versions.
    let lineage = env.json(&["lineage", "answer", &ask["seq"].to_string()]);
    assert_eq!(lineage["chunks"][0]["unchanged_since"], true);
    let chunk_id = lineage["chunks"][0]["used"]["chunk_id"].to_string();
    let chunk = env.json(&["lineage", "chunk", &chunk_id]);
    assert_eq!(chunk["content_sha256"].as_str().unwrap().len(), 64);
    assert!(chunk["parser"].is_string() && chunk["chunker"].is_string() && chunk["embedder"].is_string());
    let forward = env.json(&["lineage", "document", chunk["document_uri"].as_str().unwrap()]);
    assert!(forward.as_array().unwrap().iter().any(|r| r["seq"] == ask["seq"]));

    let verified = env.json(&["audit", "verify"]);
    assert_eq!(verified["intact"], true);
    let records = verified["records"].as_i64().unwrap();
    let anchor = env.root.join("anchor.json");
    env.ok(&["audit", "anchor", anchor.to_str().unwrap()]);
    assert_eq!(
        env.json(&["audit", "verify", "--anchor", anchor.to_str().unwrap()])["intact"],
        true
    );

    let db = rusqlite::Connection::open(env.home.join("groundwork.db")).unwrap();
    // The store itself refuses to rewrite history.
    assert!(
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", [])
            .is_err()
    );
    assert!(db.execute("DELETE FROM audit_log WHERE seq = 3", []).is_err());

    // Someone with the file drops the guard and cuts the tail: the chain alone still looks
    // whole, the anchor does not.
    db.execute_batch("DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_no_update;")
        .unwrap();
    db.execute("DELETE FROM audit_log WHERE seq > ?1", [records - 2])
        .unwrap();
    assert_eq!(env.json(&["audit", "verify"])["intact"], true);
    let cut = env.output(&["--json", "audit", "verify", "--anchor", anchor.to_str().unwrap()]);
    assert_eq!(cut.status.code(), Some(9));
    let cut: serde_json::Value = serde_json::from_slice(&cut.stdout).unwrap();
    assert_eq!(cut["first_break"]["kind"], "truncated");

    // Altering a record in the middle is named precisely.
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", [])
        .unwrap();
    let altered = env.output(&["--json", "audit", "verify"]);
    assert_eq!(altered.status.code(), Some(9));
    let altered: serde_json::Value = serde_json::from_slice(&altered.stdout).unwrap();
    assert_eq!(
        altered["first_break"],
        serde_json::json!({"kind": "altered", "seq": 3})
    );

    // So is a removed record.
    db.execute("UPDATE audit_log SET actor = 'admin' WHERE seq = 3", [])
        .unwrap();
    db.execute("DELETE FROM audit_log WHERE seq = 5", []).unwrap();
    let removed = env.output(&["--json", "audit", "verify"]);
    let removed: serde_json::Value = serde_json::from_slice(&removed.stdout).unwrap();
    assert_eq!(removed["first_break"]["kind"], "removed");
    assert_eq!(removed["first_break"]["first"], 5);
}

#[test]
fn identity_provider_tokens_are_verified_and_mapped() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let model = require_model!();
    let env = TestHome::new(model);
    let docs = corpus(&env);
    env.ok(&["group", "add", "finance"]);
    env.ok(&[
        "grant",
        "add",
        "--group",
        "finance",
        "--read",
        docs.join("finance").to_str().unwrap(),
    ]);

    // The identity provider's key, generated here; its public half is the JWKS.
    let rng = SystemRandom::new();
    let keypair = |rng: &SystemRandom| {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng).unwrap()
    };
    let idp = keypair(&rng);
    let point = idp.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "idp-1",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}]});
    let jwks_file = env.root.join("jwks.json");
    write(&jwks_file, jwks.to_string());
    let config = env.home.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[oidc]\n",
        &format!(
            "[oidc]\nissuer = \"https://idp.test\"\naudience = \"groundwork\"\njwks_file = {:?}\n",
            jwks_file.to_str().unwrap()
        ),
    );
    std::fs::write(&config, text).unwrap();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sign = |key: &EcdsaKeyPair, claims: serde_json::Value| {
        let input = format!(
            "{}.{}",
            B64.encode(serde_json::json!({"alg": "ES256", "kid": "idp-1", "typ": "JWT"}).to_string()),
            B64.encode(claims.to_string())
        );
        let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(signature.as_ref()))
    };
    let claims = |exp: i64, aud: &str| {
        serde_json::json!({"iss": "https://idp.test", "aud": aud, "sub": "erin",
                           "groups": ["finance"], "exp": exp, "iat": now})
    };
    let search = ["search", "org", "travel budget expense policy", "-k", "10"];
    let with_jwt = |token: &str| {
        let mut command = env.command(&["--json"]);
        command.args(search).env("GROUNDWORK_TOKEN", token);
        command.output().unwrap()
    };

    // erin exists only at the identity provider; her token's group claim opens finance/.
    let good = sign(&idp, claims(now + 300, "groundwork"));
    let output = with_jwt(&good);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let found: BTreeSet<String> = TestHome::hit_uris(&response)
        .iter()
        .map(|uri| file_name(uri).to_owned())
        .collect();
    assert_eq!(found, set(&["budget0.txt", "budget1.txt", "budget2.txt"]));

    for (why, token) in [
        ("expired", sign(&idp, claims(now - 600, "groundwork"))),
        ("wrong audience", sign(&idp, claims(now + 300, "another-app"))),
        ("forged", sign(&keypair(&rng), claims(now + 300, "groundwork"))),
        ("garbage", "eyJ.eyJ.sig".to_owned()),
    ] {
        let output = with_jwt(&token);
        assert_eq!(output.status.code(), Some(10), "{why}");
    }
    let refusals = env.json(&["audit", "query", "--action", "authenticate"]);
    let reasons: Vec<String> = refusals
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request"].as_str().unwrap().to_owned())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("expired")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("audience")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("signature")), "{reasons:?}");
    let searches = env.json(&["audit", "query", "--actor", "erin"]);
    assert_eq!(searches[0]["auth"], "jwt:https://idp.test");
}
