//! IAM as deployed, for DynamoDB and Secrets Manager: each function's policy read from
//! `template.yaml` for the suite's stack (HS256 tokens and login deletion on: the conditions
//! [`SUITE_CONDITIONS`] hold), and each call reduced to what IAM authorizes, as AWS documents it
//! ("DynamoDB API permissions: actions, resources, and conditions reference"; Secrets Manager's
//! `GetSecretValue` on the secret's ARN, which the template names `secret:<name>-??????`):
//! - one action per API, `dynamodb:<Operation>`, on the table (`table/<name>`), or on the index
//!   (`table/<name>/index/<index>`) for a `Query` or `Scan` with an `IndexName`;
//! - `TransactWriteItems` is no action of its own: each item is authorized by its kind
//!   (`PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem`) on its table, and
//!   `TransactGetItems` by `GetItem` per item;
//! - `BatchWriteItem` and `BatchGetItem` are actions of their own, on each table they name;
//! - a statement's `ForAllValues:StringLike` condition on `dynamodb:LeadingKeys` allows a call
//!   only if every partition key value it names matches one of the patterns (a call naming none,
//!   such as a `Scan`, satisfies `ForAllValues`, as AWS evaluates it; a key call whose key this
//!   stand-in cannot read, or a `Query` on an index, is refused rather than guessed).
//!
//! The proxy (`src/bin/iam_proxy.rs`) in front of the emulator knows the caller by the access key
//! id of the request's SigV4 signature: a function signs with its binary's name (the tests give
//! each function the credentials of its role), the tests' own set-up with [`HARNESS`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use serde_norway::Value as Yaml;

/// The access key id of the tests' own calls (set-up and inspection): every action, like the
/// account's administrator.
pub const HARNESS: &str = "test";

/// The template's conditions that hold in the suite's stack: tokens are HS256
/// (`JwtHs256SecretId` set) and erasure deletes logins (`AuthUserDeletion=on`).
pub const SUITE_CONDITIONS: [&str; 2] = ["UseHs256", "DeleteLogins"];

/// The ARN of a secret named by parameter `P`, as the template writes it.
const SECRET_ARN: (&str, &str) = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${",
    "}-??????",
);

/// `secretsmanager:BatchGetSecretValue`: an action of no resource type (granted on `*`), which
/// reads no secret itself: each secret it names needs `GetSecretValue` on that secret, and one the
/// caller may not read is answered in the answer's `Errors` ([`batch_secret_accesses`]).
pub const BATCH_SECRETS: &str = "secretsmanager:BatchGetSecretValue";

/// What IAM checks of one call: an action on a resource of the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    /// `dynamodb:GetItem`, ...
    pub action: String,
    /// `table` or `index/<name>` of the users table.
    pub resource: String,
}

/// One `Allow` statement of a function's policy.
#[derive(Debug, Clone)]
struct Grant {
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
    /// The prefixes of its `dynamodb:LeadingKeys` condition (patterns `<prefix>*`), if it has one.
    leading_keys: Option<Vec<String>>,
}

impl Grant {
    /// Whether the condition, if any, holds for a call naming the partition keys `keys`
    /// (`None`: keys this stand-in could not read, which a condition never admits).
    fn admits(&self, keys: Option<&[String]>) -> bool {
        let Some(prefixes) = &self.leading_keys else {
            return true;
        };
        keys.is_some_and(|keys| {
            keys.iter().all(|key| {
                prefixes
                    .iter()
                    .any(|prefix| key.starts_with(prefix.as_str()))
            })
        })
    }
}

/// The prefixes of a statement's `Condition`: only `ForAllValues:StringLike` on
/// `dynamodb:LeadingKeys` with `<prefix>*` patterns is read; anything else stops the tests.
fn leading_key_condition(function: &str, condition: &Yaml) -> Option<Vec<String>> {
    if condition.is_null() {
        return None;
    }
    let mapping = condition.as_mapping().expect("a Condition mapping");
    let like = &condition["ForAllValues:StringLike"];
    assert!(
        mapping.len() == 1 && like.as_mapping().is_some_and(|m| m.len() == 1),
        "{function}: a condition this stand-in does not read: {condition:?}"
    );
    let patterns = strings(&like["dynamodb:LeadingKeys"]);
    let prefixes = patterns.iter().map(|pattern| {
        let prefix = pattern.strip_suffix('*').unwrap_or(pattern);
        assert!(
            !prefix.contains(['*', '?']),
            "{function}: a LeadingKeys pattern this stand-in does not read: {pattern}"
        );
        prefix.to_owned()
    });
    Some(prefixes.collect())
}

/// Every function's DynamoDB policy, by its binary's name.
#[derive(Debug, Clone)]
pub struct Policies {
    by_function: BTreeMap<String, Vec<Grant>>,
}

impl Policies {
    /// The policies of `template.yaml` at the repository root.
    pub fn from_template() -> Policies {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let text = std::fs::read_to_string(&file).expect("template.yaml");
        Policies::parse(&text)
    }

    /// The policies of the SAM template `text`: each function's, by its binary's name, and each
    /// managed policy's that names its holder (`Metadata.Principal`, e.g. `billing-admin`). A
    /// policy this stand-in cannot read (a SAM policy template, a resource other than the users
    /// table) stops the tests: never guessed.
    pub fn parse(text: &str) -> Policies {
        let doc: Yaml = serde_norway::from_str(text).expect("template.yaml is YAML");
        let mut by_function = BTreeMap::new();
        let resources = doc["Resources"].as_mapping().expect("Resources");
        for (name, resource) in resources {
            let (holder, policies) = match resource["Type"].as_str() {
                Some("AWS::Serverless::Function") => (
                    resource["Metadata"]["BuildProperties"]["Binary"].as_str(),
                    one_or_many(&resource["Properties"]["Policies"]),
                ),
                Some("AWS::IAM::ManagedPolicy") => (
                    resource["Metadata"]["Principal"].as_str(),
                    vec![resource["Properties"]["PolicyDocument"].clone()],
                ),
                _ => continue,
            };
            let binary = holder
                .unwrap_or_else(|| panic!("{name:?} names no Binary or Principal"))
                .to_owned();
            let mut grants = Vec::new();
            let policies = policies.iter().filter_map(|p| in_suite_stack(&binary, p));
            for policy in policies.filter(|p| !p.is_null()) {
                let statements = policy["Statement"]
                    .as_sequence()
                    .unwrap_or_else(|| panic!("{binary}: only inline Statement policies are read"));
                for statement in statements {
                    assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{binary}");
                    let grant = Grant {
                        actions: strings(&statement["Action"]).into_iter().collect(),
                        resources: one_or_many(&statement["Resource"])
                            .iter()
                            .map(|r| table_resource(&binary, r))
                            .collect(),
                        leading_keys: leading_key_condition(&binary, &statement["Condition"]),
                    };
                    // `*` is read only where AWS requires it: an action of no resource type.
                    assert!(
                        !grant.resources.contains("*")
                            || grant.actions.iter().all(|a| a == BATCH_SECRETS),
                        "{binary}: Resource \"*\" for {:?}, which this stand-in does not read",
                        grant.actions
                    );
                    grants.push(grant);
                }
            }
            by_function.insert(binary, grants);
        }
        Policies { by_function }
    }

    /// The functions, by binary name.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.by_function.keys().map(String::as_str)
    }

    /// Every DynamoDB access `function`'s policy grants.
    pub fn granted(&self, function: &str) -> BTreeSet<Access> {
        let mut all = BTreeSet::new();
        for grant in self.by_function.get(function).into_iter().flatten() {
            for action in &grant.actions {
                for resource in &grant.resources {
                    all.insert(Access {
                        action: action.clone(),
                        resource: resource.clone(),
                    });
                }
            }
        }
        all
    }

    /// Whether `principal` may make `access`, naming the partition keys `keys` ([`leading_keys`]):
    /// the harness always; a function if a statement of its policy allows it; anyone else never.
    pub fn allows(&self, principal: &str, access: &Access, keys: Option<&[String]>) -> bool {
        principal == HARNESS
            || self.by_function.get(principal).is_some_and(|grants| {
                grants.iter().any(|grant| {
                    grant.actions.contains(&access.action)
                        && grant.resources.contains(&access.resource)
                        && grant.admits(keys)
                })
            })
    }

    /// Whether `principal` is known (a function, or the harness).
    pub fn knows(&self, principal: &str) -> bool {
        principal == HARNESS || self.by_function.contains_key(principal)
    }
}

/// A YAML string or list of strings.
fn strings(value: &Yaml) -> Vec<String> {
    one_or_many(value)
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

fn one_or_many(value: &Yaml) -> Vec<Yaml> {
    match value {
        Yaml::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// A policy of the template as the suite's stack has it: an `!If` on a condition resolved by
/// [`SUITE_CONDITIONS`] (`None`: `AWS::NoValue`), anything else as it is.
fn in_suite_stack(function: &str, policy: &Yaml) -> Option<Yaml> {
    let Yaml::Tagged(tagged) = policy else {
        return Some(policy.clone());
    };
    assert_eq!(
        tagged.tag.to_string(),
        "!If",
        "{function}: a policy this stand-in does not read"
    );
    let branches = tagged
        .value
        .as_sequence()
        .expect("!If [condition, then, else]");
    let condition = branches[0].as_str().expect("a condition's name");
    let chosen = &branches[if SUITE_CONDITIONS.contains(&condition) {
        1
    } else {
        2
    }];
    match chosen {
        Yaml::Tagged(no_value) if no_value.value.as_str() == Some("AWS::NoValue") => None,
        other => Some(other.clone()),
    }
}

/// A policy's `Resource`, as `table` or `index/<name>` of the users table, `secret/<P>`: the
/// secret named by template parameter `P`, or `*` (see [`BATCH_SECRETS`]).
fn table_resource(function: &str, resource: &Yaml) -> String {
    if resource.as_str() == Some("*") {
        return "*".to_owned();
    }
    if let Yaml::Tagged(tagged) = resource {
        let tag = tagged.tag.to_string();
        let tag = tag.trim_start_matches('!');
        let value = tagged.value.as_str().unwrap_or_default();
        if tag == "GetAtt" && value == "UsersTable.Arn" {
            return "table".to_owned();
        }
        if tag == "Sub"
            && let Some(parameter) = value
                .strip_prefix(SECRET_ARN.0)
                .and_then(|rest| rest.strip_suffix(SECRET_ARN.1))
        {
            return format!("secret/{parameter}");
        }
        if tag == "Sub"
            && let Some(index) = value.strip_prefix("${UsersTable.Arn}/index/")
        {
            return format!("index/{index}");
        }
    }
    panic!("{function}: a policy resource this stand-in does not read: {resource:?}")
}

/// The tables of the suite: the shared table `table`, and the tests' own copies of it
/// (`<table>-<suffix>`, see `emulator::own_table`), all standing for `UsersTable`.
fn is_users_table(name: &str, table: &str) -> bool {
    name == table || name.strip_prefix(table).is_some_and(|r| r.starts_with('-'))
}

/// What IAM authorizes for the call `operation` with the JSON `body`, on the users table named
/// `table`; `Err` names a table that is not it (which no policy here grants).
pub fn accesses(operation: &str, body: &Value, table: &str) -> Result<Vec<Access>, String> {
    let on = |action: &str, table_name: Option<&str>, index: Option<&str>| {
        let name = table_name.unwrap_or_default();
        if !is_users_table(name, table) {
            return Err(format!("table/{name}"));
        }
        Ok(Access {
            action: format!("dynamodb:{action}"),
            resource: index.map_or("table".to_owned(), |i| format!("index/{i}")),
        })
    };
    if operation == "GetSecretValue" {
        return Ok(vec![secret_access(
            body["SecretId"].as_str().unwrap_or_default(),
        )?]);
    }
    let table_name = body["TableName"].as_str();
    match operation {
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                let (kind, part) = item
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .ok_or_else(|| "an empty transaction item".to_owned())?;
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => return Err(format!("transaction item {other}")),
                };
                on(action, part["TableName"].as_str(), None)
            })
            .collect(),
        "BatchWriteItem" | "BatchGetItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| on(operation, Some(name), None))
            .collect(),
        "Query" | "Scan" => Ok(vec![on(operation, table_name, body["IndexName"].as_str())?]),
        _ => Ok(vec![on(operation, table_name, None)?]),
    }
}

/// `GetSecretValue` on the secret named `name`; `Err` names a secret that is not the suite's
/// (which no policy here grants).
fn secret_access(name: &str) -> Result<Access, String> {
    let parameter = crate::suite_secrets::parameter_of(name).ok_or(format!("secret/{name}"))?;
    Ok(Access {
        action: "secretsmanager:GetSecretValue".to_owned(),
        resource: format!("secret/{parameter}"),
    })
}

/// What IAM authorizes for a `BatchGetSecretValue` with the JSON `body`: the batch itself on `*`,
/// and each id of its `SecretIdList` with its own `GetSecretValue` (on `secret/<id>` for a
/// secret that is not the suite's, which no policy here grants). `Filters` would need
/// `ListSecrets` too, which no policy here grants either.
pub fn batch_secret_accesses(body: &Value) -> (Access, Vec<(String, Access)>) {
    let batch = Access {
        action: BATCH_SECRETS.to_owned(),
        resource: "*".to_owned(),
    };
    let ids = body["SecretIdList"].as_array().into_iter().flatten();
    let each = ids
        .filter_map(Value::as_str)
        .map(|id| {
            let access = secret_access(id).unwrap_or_else(|resource| Access {
                action: "secretsmanager:GetSecretValue".to_owned(),
                resource,
            });
            (id.to_owned(), access)
        })
        .collect();
    (batch, each)
}

/// The partition key values each access of [`accesses`] names, in the same order, as IAM's
/// `dynamodb:LeadingKeys` reads them: an item call's key (or item), each item of a transaction
/// or a batch, a `Query`'s partition key equality; none for a `Scan`. `None` where a key call's
/// key cannot be read here, and for a `Query` on an index.
pub fn leading_keys(operation: &str, body: &Value) -> Vec<Option<Vec<String>>> {
    let pk = |item: &Value| item["pk"]["S"].as_str().map(str::to_owned);
    let of_item = |part: &Value| {
        pk(&part["Key"])
            .or_else(|| pk(&part["Item"]))
            .map(|k| vec![k])
    };
    match operation {
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                item.as_object()
                    .and_then(|o| o.values().next())
                    .and_then(of_item)
            })
            .collect(),
        "BatchWriteItem" | "BatchGetItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, requests)| {
                let writes = requests.as_array().into_iter().flatten().map(|r| {
                    pk(&r["DeleteRequest"]["Key"]).or_else(|| pk(&r["PutRequest"]["Item"]))
                });
                let gets = requests["Keys"].as_array().into_iter().flatten().map(pk);
                writes.chain(gets).collect::<Option<Vec<String>>>()
            })
            .collect(),
        "Query" if body["IndexName"].is_string() => vec![None],
        "Query" => vec![query_partition(body).map(|key| vec![key])],
        "Scan" => vec![Some(Vec::new())],
        _ => vec![of_item(body)],
    }
}

/// The partition key value of a `Query`'s key condition (`pk = :v` or `#n = :v`).
fn query_partition(body: &Value) -> Option<String> {
    let condition = body["KeyConditionExpression"].as_str()?;
    condition.split(" AND ").find_map(|clause| {
        let (name, value) = clause.trim().trim_matches(['(', ')']).split_once('=')?;
        let name = name.trim();
        let name = body["ExpressionAttributeNames"][name]
            .as_str()
            .unwrap_or(name);
        (name == "pk").then_some(())?;
        body["ExpressionAttributeValues"][value.trim()]["S"]
            .as_str()
            .map(str::to_owned)
    })
}

/// The access key id of a SigV4 `Authorization` header.
pub fn access_key_id(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    credential.split('/').next().filter(|id| !id.is_empty())
}

/// DynamoDB's answer to a call IAM denies: 400 `AccessDeniedException`, naming the role, the
/// action and the resource.
pub fn denied_body(principal: &str, access: &Access, table: &str) -> Value {
    let resource = match access.resource.as_str() {
        "*" => {
            return serde_json::json!({
                "__type": "com.amazon.coral.service#AccessDeniedException",
                "Message": format!(
                    "User: arn:aws:sts::123456789012:assumed-role/{principal}-role/{principal} is \
                     not authorized to perform: {action} because no identity-based policy \
                     allows the {action} action",
                    action = access.action,
                ),
            });
        }
        "table" => format!("dynamodb:us-east-1:123456789012:table/{table}"),
        secret if secret.starts_with("secret/") => {
            format!(
                "secretsmanager:us-east-1:123456789012:{}",
                secret.replace('/', ":")
            )
        }
        index => format!("dynamodb:us-east-1:123456789012:table/{table}/{index}"),
    };
    serde_json::json!({
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "Message": format!(
            "User: arn:aws:sts::123456789012:assumed-role/{principal}-role/{principal} is not \
             authorized to perform: {action} on resource: arn:aws:{resource} \
             because no identity-based policy allows the {action} action",
            action = access.action,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = r#"
Resources:
  UsersTable:
    Type: AWS::DynamoDB::Table
  A:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: a
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:UpdateItem]
              Resource: !GetAtt UsersTable.Arn
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !Sub "${UsersTable.Arn}/index/due"
"#;

    fn access(action: &str, resource: &str) -> Access {
        Access {
            action: format!("dynamodb:{action}"),
            resource: resource.to_owned(),
        }
    }

    #[test]
    fn a_policy_grants_its_actions_on_its_resources_only() {
        let policies = Policies::parse(TEMPLATE);
        let allows = |who, action, on| policies.allows(who, &access(action, on), Some(&[]));
        assert!(allows("a", "GetItem", "table"));
        assert!(allows("a", "Query", "index/due"));
        assert!(!allows("a", "Query", "table"));
        assert!(!allows("a", "DeleteItem", "table"));
        assert!(!allows("stranger", "GetItem", "table"));
        assert!(allows(HARNESS, "DeleteItem", "table"));
        assert_eq!(policies.granted("a").len(), 3);
    }

    #[test]
    fn a_leading_keys_condition_admits_only_the_partitions_it_names() {
        let template = format!(
            "{TEMPLATE}{}",
            r#"
  B:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: b
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:Query]
              Resource: !GetAtt UsersTable.Arn
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys: ["USER#*", "TOMBSTONE#*"]
"#
        );
        let policies = Policies::parse(&template);
        let get = |pk: &str| json!({"TableName": "t", "Key": {"pk": {"S": pk}, "sk": {"S": "x"}}});
        let query = |pk: &str| {
            json!({"TableName": "t", "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :p)",
                   "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
                   "ExpressionAttributeValues": {":pk": {"S": pk}, ":p": {"S": "L"}}})
        };
        let allowed = |operation: &str, body: &Value| {
            let keys = leading_keys(operation, body);
            let got = accesses(operation, body, "t").unwrap();
            got.iter()
                .zip(&keys)
                .all(|(access, keys)| policies.allows("b", access, keys.as_deref()))
        };
        assert!(allowed("GetItem", &get("USER#u1")));
        assert!(allowed("GetItem", &get("TOMBSTONE#ab")));
        assert!(!allowed("GetItem", &get("CUSTOMER#cus_1")));
        assert!(!allowed("GetItem", &get("EVENT#evt_1")));
        assert!(allowed("Query", &query("USER#u1")));
        assert!(!allowed("Query", &query("RECONCILE")));
        assert_eq!(
            leading_keys("Query", &query("USER#u1")),
            [Some(vec!["USER#u1".to_owned()])]
        );
        let unreadable = json!({"TableName": "t", "KeyConditionExpression": ":v = pk"});
        assert!(
            !allowed("Query", &unreadable),
            "a key it cannot read is refused"
        );
        let on_index = json!({"TableName": "t", "IndexName": "due"});
        assert_eq!(leading_keys("Query", &on_index), [None]);
    }

    #[test]
    fn a_transaction_is_authorized_item_by_item() {
        let body = json!({"TransactItems": [
            {"Update": {"TableName": "t"}},
            {"Put": {"TableName": "t-own1"}},
            {"ConditionCheck": {"TableName": "t"}},
            {"Delete": {"TableName": "t"}},
        ]});
        let got = accesses("TransactWriteItems", &body, "t").unwrap();
        let actions: Vec<&str> = got.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "dynamodb:UpdateItem",
                "dynamodb:PutItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem"
            ]
        );
        assert!(accesses("GetItem", &json!({"TableName": "other"}), "t").is_err());
    }

    #[test]
    fn a_query_on_an_index_is_on_the_index_and_batches_are_their_own_action() {
        let query = json!({"TableName": "t", "IndexName": "due"});
        assert_eq!(
            accesses("Query", &query, "t").unwrap(),
            [access("Query", "index/due")]
        );
        let batch = json!({"RequestItems": {"t": []}});
        assert_eq!(
            accesses("BatchWriteItem", &batch, "t").unwrap(),
            [access("BatchWriteItem", "table")]
        );
    }

    #[test]
    fn the_caller_is_the_signature_s_access_key_id() {
        let header = "AWS4-HMAC-SHA256 Credential=stripe-webhook/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=ab";
        assert_eq!(access_key_id(header), Some("stripe-webhook"));
        assert_eq!(access_key_id("Bearer x"), None);
    }

    #[test]
    fn the_repository_template_is_readable() {
        let policies = Policies::from_template();
        assert!(policies.functions().count() >= 7);
    }
}
