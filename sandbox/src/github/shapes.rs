//! The JSON shapes GitHub repeats everywhere: users and repositories, in
//! their REST forms and in the stricter forms webhook payloads use.

use super::{GithubSimConfig, iso};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// A stable numeric id for a name, in the range GitHub's ids live in.
pub(super) fn stable_id(kind: &str, name: &str) -> u64 {
    let hex = super::sha256_hex(format!("{kind}:{name}").as_bytes());
    u64::from_str_radix(&hex[..8], 16).unwrap_or(1) % 900_000_000 + 1_000_000
}

/// A GraphQL-style node id: base64 of `<kind>:<id>`.
pub(super) fn node_id(kind: &str, id: impl std::fmt::Display) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}:{id}"))
}

/// `simple-user` for `login`; `base` is the API root.
pub(super) fn simple_user(base: &str, login: &str) -> Value {
    let id = stable_id("user", login);
    let api = format!("{base}/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": node_id("04:User", id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User",
        "user_view_type": "public",
        "site_admin": false,
    })
}

pub(super) fn repo_id(config: &GithubSimConfig) -> u64 {
    stable_id("repo", &format!("{}/{}", config.owner, config.repo))
}

/// `full-repository` (a superset of `repository` and `minimal-repository`).
pub(super) fn full_repository(
    base: &str,
    config: &GithubSimConfig,
    created_at: OffsetDateTime,
    pushed_at: OffsetDateTime,
) -> Value {
    let full_name = format!("{}/{}", config.owner, config.repo);
    let api = format!("{base}/repos/{full_name}");
    let html = format!("https://github.com/{full_name}");
    let id = repo_id(config);
    let mut repo = json!({
        "id": id,
        "node_id": node_id("010:Repository", id),
        "name": config.repo,
        "full_name": full_name,
        "owner": simple_user(base, &config.owner),
        "private": true,
        "html_url": html,
        "description": "Synthetic data simulator (Flightdeck sandbox copy)",
        "fork": false,
        "url": api,
        "archive_url": format!("{api}/{{archive_format}}{{/ref}}"),
        "assignees_url": format!("{api}/assignees{{/user}}"),
        "blobs_url": format!("{api}/git/blobs{{/sha}}"),
        "branches_url": format!("{api}/branches{{/branch}}"),
        "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
        "comments_url": format!("{api}/comments{{/number}}"),
        "commits_url": format!("{api}/commits{{/sha}}"),
        "compare_url": format!("{api}/compare/{{base}}...{{head}}"),
        "contents_url": format!("{api}/contents/{{+path}}"),
        "contributors_url": format!("{api}/contributors"),
        "deployments_url": format!("{api}/deployments"),
        "downloads_url": format!("{api}/downloads"),
        "events_url": format!("{api}/events"),
        "forks_url": format!("{api}/forks"),
        "git_commits_url": format!("{api}/git/commits{{/sha}}"),
        "git_refs_url": format!("{api}/git/refs{{/sha}}"),
        "git_tags_url": format!("{api}/git/tags{{/sha}}"),
        "git_url": format!("git://github.com/{full_name}.git"),
        "issue_comment_url": format!("{api}/issues/comments{{/number}}"),
    });
    extend(
        &mut repo,
        json!({
        "issue_events_url": format!("{api}/issues/events{{/number}}"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "keys_url": format!("{api}/keys{{/key_id}}"),
        "labels_url": format!("{api}/labels{{/name}}"),
        "languages_url": format!("{api}/languages"),
        "merges_url": format!("{api}/merges"),
        "milestones_url": format!("{api}/milestones{{/number}}"),
        "notifications_url": format!("{api}/notifications{{?since,all,participating}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "releases_url": format!("{api}/releases{{/id}}"),
        "ssh_url": format!("git@github.com:{full_name}.git"),
        "stargazers_url": format!("{api}/stargazers"),
        "statuses_url": format!("{api}/statuses/{{sha}}"),
        "subscribers_url": format!("{api}/subscribers"),
        "subscription_url": format!("{api}/subscription"),
        "tags_url": format!("{api}/tags"),
        "teams_url": format!("{api}/teams"),
        "trees_url": format!("{api}/git/trees{{/sha}}"),
        "clone_url": format!("https://github.com/{full_name}.git"),
        "mirror_url": null,
        "hooks_url": format!("{api}/hooks"),
        "svn_url": html,
        "homepage": null,
        "language": "Python",
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "size": 2048,
        "default_branch": config.default_branch,
        }),
    );
    extend(
        &mut repo,
        json!({
        "open_issues_count": 0,
        "is_template": false,
        "topics": [],
        "has_issues": true,
        "has_projects": true,
        "has_wiki": false,
        "has_pages": false,
        "has_downloads": true,
        "has_discussions": false,
        "archived": false,
        "disabled": false,
        "visibility": "private",
        "pushed_at": iso(pushed_at),
        "created_at": iso(created_at),
        "updated_at": iso(pushed_at),
        "permissions": { "admin": false, "maintain": false, "push": true, "triage": true, "pull": true },
        "allow_rebase_merge": true,
        "allow_squash_merge": true,
        "allow_auto_merge": false,
        "delete_branch_on_merge": true,
        "allow_merge_commit": true,
        "allow_forking": false,
        "web_commit_signoff_required": false,
        "subscribers_count": 1,
        "network_count": 0,
        "license": null,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "custom_properties": {},

        }),
    );
    repo
}

/// Keeps only `keys` of an object (webhook schemas forbid extra properties).
pub(super) fn pick(value: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    if let Some(object) = value.as_object() {
        for key in keys {
            if let Some(v) = object.get(*key) {
                out.insert((*key).to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The properties of the webhook schemas' `user`.
pub(super) const HOOK_USER: &[&str] = &[
    "login",
    "id",
    "node_id",
    "name",
    "email",
    "avatar_url",
    "gravatar_id",
    "url",
    "html_url",
    "followers_url",
    "following_url",
    "gists_url",
    "starred_url",
    "subscriptions_url",
    "organizations_url",
    "repos_url",
    "events_url",
    "received_events_url",
    "type",
    "site_admin",
];

/// The properties of the webhook schemas' `repository-lite`.
pub(super) const HOOK_REPO_LITE: &[&str] = &[
    "archive_url",
    "assignees_url",
    "blobs_url",
    "branches_url",
    "collaborators_url",
    "comments_url",
    "commits_url",
    "compare_url",
    "contents_url",
    "contributors_url",
    "deployments_url",
    "description",
    "downloads_url",
    "events_url",
    "fork",
    "forks_url",
    "full_name",
    "git_commits_url",
    "git_refs_url",
    "git_tags_url",
    "hooks_url",
    "html_url",
    "id",
    "issue_comment_url",
    "issue_events_url",
    "issues_url",
    "keys_url",
    "labels_url",
    "languages_url",
    "merges_url",
    "milestones_url",
    "name",
    "node_id",
    "notifications_url",
    "owner",
    "private",
    "pulls_url",
    "releases_url",
    "stargazers_url",
    "statuses_url",
    "subscribers_url",
    "subscription_url",
    "tags_url",
    "teams_url",
    "trees_url",
    "url",
];

/// The properties of the webhook schemas' `repository` that GitHub sends.
const HOOK_REPO: &[&str] = &[
    "id",
    "node_id",
    "name",
    "full_name",
    "private",
    "owner",
    "html_url",
    "description",
    "fork",
    "url",
    "forks_url",
    "keys_url",
    "collaborators_url",
    "teams_url",
    "hooks_url",
    "issue_events_url",
    "events_url",
    "assignees_url",
    "branches_url",
    "tags_url",
    "blobs_url",
    "git_tags_url",
    "git_refs_url",
    "trees_url",
    "statuses_url",
    "languages_url",
    "stargazers_url",
    "contributors_url",
    "subscribers_url",
    "subscription_url",
    "commits_url",
    "git_commits_url",
    "comments_url",
    "issue_comment_url",
    "contents_url",
    "compare_url",
    "merges_url",
    "archive_url",
    "downloads_url",
    "issues_url",
    "pulls_url",
    "milestones_url",
    "notifications_url",
    "labels_url",
    "releases_url",
    "deployments_url",
    "created_at",
    "updated_at",
    "pushed_at",
    "git_url",
    "ssh_url",
    "clone_url",
    "svn_url",
    "homepage",
    "size",
    "stargazers_count",
    "watchers_count",
    "language",
    "has_issues",
    "has_projects",
    "has_downloads",
    "has_wiki",
    "has_pages",
    "has_discussions",
    "forks_count",
    "mirror_url",
    "archived",
    "disabled",
    "open_issues_count",
    "license",
    "forks",
    "open_issues",
    "watchers",
    "default_branch",
    "allow_forking",
    "is_template",
    "web_commit_signoff_required",
    "topics",
    "visibility",
    "custom_properties",
];

/// The webhook `repository`: the REST one without what the schema forbids,
/// owner as a webhook `user`. Push events carry times as epoch seconds.
pub(super) fn hook_repository(rest: &Value, epoch_times: bool) -> Value {
    let mut repo = pick(rest, HOOK_REPO);
    repo["owner"] = pick(&rest["owner"], HOOK_USER);
    if epoch_times {
        for key in ["created_at", "pushed_at"] {
            if let Some(t) = repo[key].as_str().and_then(super::parse_iso) {
                repo[key] = json!(t.unix_timestamp());
            }
        }
    }
    repo
}

/// The webhook `repository-lite`.
pub(super) fn hook_repository_lite(rest: &Value) -> Value {
    let mut repo = pick(rest, HOOK_REPO_LITE);
    repo["owner"] = pick(&rest["owner"], HOOK_USER);
    repo
}

/// Adds `extra`'s properties to the object `value` (big literals are
/// built in parts: one `json!` of a hundred keys exceeds the macro depth).
pub(super) fn extend(value: &mut Value, extra: Value) {
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), extra) {
        object.extend(extra);
    }
}
