//! The repository: a content-addressed store of blobs, flat trees and
//! commits with refs, and the REST routes that read and write it
//! (repository, branches, commits, compare, contents, Git Data, pulls).

use super::shapes::{full_repository, node_id, simple_user, stable_id};
use super::{
    Base, GithubSim, PageQuery, Person, World, error, iso, not_found, paginate, parse_body,
    parse_iso, sha256_hex, unprocessable, with_link,
};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use time::OffsetDateTime;

/// Who wrote or committed a commit, and when.
#[derive(Debug, Clone)]
pub(super) struct Signature {
    pub name: String,
    pub email: String,
    pub date: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(super) struct CommitObj {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
    pub author: Signature,
    pub committer: Signature,
    /// The GitHub account of the author, when there is one.
    pub login: Option<String>,
}

/// A tree is flat here: every file's full path → its blob sha.
pub(super) type Tree = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub(super) struct Store {
    pub blobs: HashMap<String, String>,
    pub trees: HashMap<String, Tree>,
    pub commits: HashMap<String, CommitObj>,
    /// Full names (`refs/heads/main`) → commit sha.
    pub refs: BTreeMap<String, String>,
}

fn short_hash(kind: &str, body: &str) -> String {
    sha256_hex(format!("{kind} {}\0{body}", body.len()).as_bytes())[..40].to_owned()
}

impl Store {
    pub fn insert_blob(&mut self, content: &str) -> String {
        let sha = short_hash("blob", content);
        self.blobs.insert(sha.clone(), content.to_owned());
        sha
    }

    /// Stores a tree and, so that `GET git/trees/{sha}` can walk into
    /// them, each of its directories as a tree of its own.
    pub fn insert_tree(&mut self, tree: Tree) -> String {
        let body: String = tree
            .iter()
            .map(|(path, sha)| format!("{path} {sha}\n"))
            .collect();
        let sha = short_hash("tree", &body);
        if self.trees.contains_key(&sha) {
            return sha;
        }
        let dirs: BTreeSet<String> = tree
            .keys()
            .filter_map(|p| p.split_once('/').map(|(d, _)| d.to_owned()))
            .collect();
        for dir in dirs {
            let sub = subtree(&tree, &dir);
            self.insert_tree(sub);
        }
        self.trees.insert(sha.clone(), tree);
        sha
    }

    pub fn insert_files(&mut self, files: &BTreeMap<String, String>) -> String {
        let tree = files
            .iter()
            .map(|(path, text)| (path.clone(), self.insert_blob(text)))
            .collect();
        self.insert_tree(tree)
    }

    /// Stores a commit; its sha covers tree, parents, people and message
    /// but no timestamps, so a seeded history is the same on every start.
    pub fn insert_commit(&mut self, mut commit: CommitObj) -> String {
        let mut body = format!("tree {}\n", commit.tree);
        for parent in &commit.parents {
            body.push_str(&format!("parent {parent}\n"));
        }
        body.push_str(&format!(
            "author {} <{}>\ncommitter {} <{}>\n\n{}",
            commit.author.name,
            commit.author.email,
            commit.committer.name,
            commit.committer.email,
            commit.message
        ));
        let sha = short_hash("commit", &body);
        commit.sha = sha.clone();
        self.commits.entry(sha.clone()).or_insert(commit);
        sha
    }

    pub fn branch_head(&self, branch: &str) -> Option<String> {
        self.refs.get(&format!("refs/heads/{branch}")).cloned()
    }

    /// A branch, tag, `heads/…`/`refs/…` name, full sha or unique sha prefix.
    pub fn resolve(&self, name: &str) -> Option<String> {
        let name = name.trim();
        let short = name.strip_prefix("refs/").unwrap_or(name);
        for candidate in [
            format!("refs/{short}"),
            format!("refs/heads/{short}"),
            format!("refs/tags/{short}"),
        ] {
            if let Some(sha) = self.refs.get(&candidate) {
                return Some(sha.clone());
            }
        }
        if self.commits.contains_key(name) {
            return Some(name.to_owned());
        }
        if name.len() >= 4 && name.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut found = self.commits.keys().filter(|sha| sha.starts_with(name));
            if let (Some(sha), None) = (found.next(), found.next()) {
                return Some(sha.clone());
            }
        }
        None
    }

    pub fn tree_of(&self, commit: &str) -> Tree {
        self.commits
            .get(commit)
            .and_then(|c| self.trees.get(&c.tree))
            .cloned()
            .unwrap_or_default()
    }

    /// Every commit reachable from `head` (itself included), breadth first.
    pub fn ancestors(&self, head: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        let mut queue = VecDeque::from([head.to_owned()]);
        while let Some(sha) = queue.pop_front() {
            if !seen.insert(sha.clone()) {
                continue;
            }
            if let Some(commit) = self.commits.get(&sha) {
                queue.extend(commit.parents.iter().cloned());
                order.push(sha);
            }
        }
        order
    }

    /// Reachable commits, newest first (by committer date, then graph order).
    pub fn history(&self, head: &str) -> Vec<&CommitObj> {
        let mut commits: Vec<&CommitObj> = self
            .ancestors(head)
            .iter()
            .filter_map(|sha| self.commits.get(sha))
            .collect();
        commits.sort_by_key(|c| std::cmp::Reverse(c.committer.date));
        commits
    }

    /// What changed from `old` to `new`, path by path.
    pub fn diff(&self, old: &Tree, new: &Tree) -> Vec<FileChange> {
        let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let mut changes = Vec::new();
        for path in paths {
            let (before, after) = (old.get(path), new.get(path));
            if before == after {
                continue;
            }
            let text = |sha: Option<&String>| {
                sha.and_then(|s| self.blobs.get(s))
                    .map(String::as_str)
                    .unwrap_or("")
            };
            let (additions, deletions) = line_changes(text(before), text(after));
            let status = match (before, after) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                _ => "modified",
            };
            changes.push(FileChange {
                filename: path.clone(),
                status,
                sha: after.or(before).cloned().unwrap_or_default(),
                additions,
                deletions,
                patch: patch(text(before), text(after)),
            });
        }
        changes
    }

    /// The files `commit` changed against its first parent.
    pub fn changes_of(&self, commit: &CommitObj) -> Vec<FileChange> {
        let parent = commit
            .parents
            .first()
            .map(|p| self.tree_of(p))
            .unwrap_or_default();
        let tree = self.trees.get(&commit.tree).cloned().unwrap_or_default();
        self.diff(&parent, &tree)
    }

    pub fn is_ancestor(&self, ancestor: &str, of: &str) -> bool {
        self.ancestors(of).iter().any(|sha| sha == ancestor)
    }
}

/// The files under `dir`, with paths relative to it.
fn subtree(tree: &Tree, dir: &str) -> Tree {
    let prefix = format!("{dir}/");
    tree.iter()
        .filter_map(|(p, sha)| p.strip_prefix(&prefix).map(|r| (r.to_owned(), sha.clone())))
        .collect()
}

/// Lines added and removed, counted as multisets (no alignment).
fn line_changes(old: &str, new: &str) -> (usize, usize) {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for line in old.lines() {
        *counts.entry(line).or_default() -= 1;
    }
    for line in new.lines() {
        *counts.entry(line).or_default() += 1;
    }
    let additions = counts.values().filter(|c| **c > 0).sum::<i64>();
    let deletions = -counts.values().filter(|c| **c < 0).sum::<i64>();
    (additions as usize, deletions as usize)
}

/// A whole-file hunk: enough for a reader, not a minimal diff.
fn patch(old: &str, new: &str) -> String {
    let (o, n) = (old.lines().count(), new.lines().count());
    let mut out = format!(
        "@@ -{},{o} +{},{n} @@",
        if o == 0 { 0 } else { 1 },
        if n == 0 { 0 } else { 1 }
    );
    for line in old.lines() {
        out.push_str(&format!("\n-{line}"));
    }
    for line in new.lines() {
        out.push_str(&format!("\n+{line}"));
    }
    out
}

#[derive(Debug, Clone)]
pub(super) struct FileChange {
    pub filename: String,
    pub status: &'static str,
    pub sha: String,
    pub additions: usize,
    pub deletions: usize,
    pub patch: String,
}

/// An open (or closed) pull request.
#[derive(Debug, Clone)]
pub(super) struct Pull {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub head: String,
    pub base: String,
    pub state: &'static str,
    pub user: String,
    pub created_at: OffsetDateTime,
}

pub(super) fn routes() -> Router<GithubSim> {
    Router::new()
        .route("/repos/{owner}/{repo}", get(get_repository))
        .route("/repos/{owner}/{repo}/branches/{*branch}", get(get_branch))
        .route("/repos/{owner}/{repo}/commits", get(list_commits))
        .route("/repos/{owner}/{repo}/commits/{*sha}", get(get_commit))
        .route("/repos/{owner}/{repo}/compare/{*basehead}", get(compare))
        .route("/repos/{owner}/{repo}/contents", get(get_root_contents))
        .route("/repos/{owner}/{repo}/contents/", get(get_root_contents))
        .route("/repos/{owner}/{repo}/contents/{*path}", get(get_contents))
        .route(
            "/repos/{owner}/{repo}/git/commits",
            axum::routing::post(create_git_commit),
        )
        .route(
            "/repos/{owner}/{repo}/git/commits/{sha}",
            get(get_git_commit),
        )
        .route(
            "/repos/{owner}/{repo}/git/trees",
            axum::routing::post(create_tree),
        )
        .route("/repos/{owner}/{repo}/git/trees/{sha}", get(get_tree))
        .route("/repos/{owner}/{repo}/git/ref/{*name}", get(get_ref))
        .route(
            "/repos/{owner}/{repo}/git/matching-refs/{*name}",
            get(matching_refs),
        )
        .route(
            "/repos/{owner}/{repo}/git/refs",
            axum::routing::post(create_ref),
        )
        .route(
            "/repos/{owner}/{repo}/git/refs/{*name}",
            axum::routing::patch(update_ref),
        )
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
}

impl GithubSim {
    fn repo_api(&self, base: &str) -> String {
        format!(
            "{base}/repos/{}/{}",
            self.config().owner,
            self.config().repo
        )
    }

    fn repo_html(&self) -> String {
        format!(
            "https://github.com/{}/{}",
            self.config().owner,
            self.config().repo
        )
    }

    pub(super) fn repository_json(&self, world: &World, base: &str) -> Value {
        let pushed = world
            .git
            .commits
            .values()
            .map(|c| c.committer.date)
            .max()
            .unwrap_or(world.created_at);
        full_repository(base, self.config(), world.created_at, pushed)
    }

    fn git_user(sig: &Signature) -> Value {
        json!({ "name": sig.name, "email": sig.email, "date": iso(sig.date) })
    }

    fn verification() -> Value {
        json!({ "verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null })
    }

    /// `commit` (the REST "Commit" with its Git commit inside).
    pub(super) fn commit_json(
        &self,
        store: &Store,
        base: &str,
        commit: &CommitObj,
        with_files: bool,
    ) -> Value {
        let api = self.repo_api(base);
        let html = self.repo_html();
        let user = commit
            .login
            .as_deref()
            .map(|login| simple_user(base, login))
            .unwrap_or(Value::Null);
        let mut value = json!({
            "url": format!("{api}/commits/{}", commit.sha),
            "sha": commit.sha,
            "node_id": node_id("06:Commit", &commit.sha),
            "html_url": format!("{html}/commit/{}", commit.sha),
            "comments_url": format!("{api}/commits/{}/comments", commit.sha),
            "commit": {
                "url": format!("{api}/git/commits/{}", commit.sha),
                "author": Self::git_user(&commit.author),
                "committer": Self::git_user(&commit.committer),
                "message": commit.message,
                "tree": { "sha": commit.tree, "url": format!("{api}/git/trees/{}", commit.tree) },
                "comment_count": 0,
                "verification": Self::verification(),
            },
            "author": user,
            "committer": user,
            "parents": commit.parents.iter().map(|p| json!({
                "sha": p,
                "url": format!("{api}/commits/{p}"),
                "html_url": format!("{html}/commit/{p}"),
            })).collect::<Vec<_>>(),
        });
        if with_files {
            let changes = store.changes_of(commit);
            let additions: usize = changes.iter().map(|c| c.additions).sum();
            let deletions: usize = changes.iter().map(|c| c.deletions).sum();
            value["stats"] = json!({ "additions": additions, "deletions": deletions, "total": additions + deletions });
            value["files"] = self.files_json(base, &commit.sha, &changes);
        }
        value
    }

    /// `diff-entry` items.
    fn files_json(&self, base: &str, at: &str, changes: &[FileChange]) -> Value {
        let api = self.repo_api(base);
        let html = self.repo_html();
        changes
            .iter()
            .map(|c| {
                json!({
                    "sha": c.sha,
                    "filename": c.filename,
                    "status": c.status,
                    "additions": c.additions,
                    "deletions": c.deletions,
                    "changes": c.additions + c.deletions,
                    "blob_url": format!("{html}/blob/{at}/{}", c.filename),
                    "raw_url": format!("{html}/raw/{at}/{}", c.filename),
                    "contents_url": format!("{api}/contents/{}?ref={at}", c.filename),
                    "patch": c.patch,
                })
            })
            .collect()
    }

    /// `git-commit`.
    fn git_commit_json(&self, base: &str, commit: &CommitObj) -> Value {
        let api = self.repo_api(base);
        let html = self.repo_html();
        json!({
            "sha": commit.sha,
            "node_id": node_id("06:Commit", &commit.sha),
            "url": format!("{api}/git/commits/{}", commit.sha),
            "html_url": format!("{html}/commit/{}", commit.sha),
            "author": Self::git_user(&commit.author),
            "committer": Self::git_user(&commit.committer),
            "message": commit.message,
            "tree": { "sha": commit.tree, "url": format!("{api}/git/trees/{}", commit.tree) },
            "parents": commit.parents.iter().map(|p| json!({
                "sha": p,
                "url": format!("{api}/git/commits/{p}"),
                "html_url": format!("{html}/commit/{p}"),
            })).collect::<Vec<_>>(),
            "verification": Self::verification(),
        })
    }

    /// `git-tree`: the top level, or every entry when `recursive`.
    fn tree_json(&self, store: &Store, base: &str, sha: &str, recursive: bool) -> Option<Value> {
        let tree = store.trees.get(sha)?;
        let api = self.repo_api(base);
        let mut entries: BTreeMap<String, Value> = BTreeMap::new();
        for (path, blob) in tree {
            let parts: Vec<&str> = path.split('/').collect();
            let dirs = if recursive { parts.len() - 1 } else { 1 };
            for depth in 1..=dirs.min(parts.len() - 1) {
                let dir = parts[..depth].join("/");
                if entries.contains_key(&dir) {
                    continue;
                }
                let mut sub = subtree(tree, &dir);
                let sub_sha = {
                    let body: String = std::mem::take(&mut sub)
                        .iter()
                        .map(|(p, s)| format!("{p} {s}\n"))
                        .collect();
                    short_hash("tree", &body)
                };
                entries.insert(
                    dir.clone(),
                    json!({ "path": dir, "mode": "040000", "type": "tree", "sha": sub_sha,
                            "url": format!("{api}/git/trees/{sub_sha}") }),
                );
            }
            if recursive || parts.len() == 1 {
                let size = store.blobs.get(blob).map_or(0, String::len);
                entries.insert(
                    path.clone(),
                    json!({ "path": path, "mode": "100644", "type": "blob", "sha": blob,
                            "size": size, "url": format!("{api}/git/blobs/{blob}") }),
                );
            }
        }
        Some(json!({
            "sha": sha,
            "url": format!("{api}/git/trees/{sha}"),
            "tree": entries.into_values().collect::<Vec<_>>(),
            "truncated": false,
        }))
    }

    fn ref_json(&self, base: &str, name: &str, sha: &str) -> Value {
        let api = self.repo_api(base);
        json!({
            "ref": name,
            "node_id": node_id("03:Ref", name),
            "url": format!("{api}/git/{name}"),
            "object": { "type": "commit", "sha": sha, "url": format!("{api}/git/commits/{sha}") },
        })
    }

    fn pull_json(&self, world: &World, base: &str, pull: &Pull, full: bool) -> Value {
        let api = self.repo_api(base);
        let html = self.repo_html();
        let repo = self.repository_json(world, base);
        let n = pull.number;
        let id = stable_id("pull", &n.to_string());
        let side = |branch: &str| {
            json!({
                "label": format!("{}:{branch}", self.config().owner),
                "ref": branch,
                "sha": world.git.branch_head(branch).unwrap_or_default(),
                "user": simple_user(base, &self.config().owner),
                "repo": repo,
            })
        };
        let head_sha = world.git.branch_head(&pull.head).unwrap_or_default();
        let link = |href: String| json!({ "href": href });
        let links = json!({
            "self": link(format!("{api}/pulls/{n}")),
            "html": link(format!("{html}/pull/{n}")),
            "issue": link(format!("{api}/issues/{n}")),
            "comments": link(format!("{api}/issues/{n}/comments")),
            "review_comments": link(format!("{api}/pulls/{n}/comments")),
            "review_comment": link(format!("{api}/pulls/comments{{/number}}")),
            "commits": link(format!("{api}/pulls/{n}/commits")),
            "statuses": link(format!("{api}/statuses/{head_sha}")),
        });
        let mut value = json!({
            "url": format!("{api}/pulls/{n}"),
            "id": id,
            "node_id": node_id("011:PullRequest", id),
            "html_url": format!("{html}/pull/{n}"),
            "diff_url": format!("{html}/pull/{n}.diff"),
            "patch_url": format!("{html}/pull/{n}.patch"),
            "issue_url": format!("{api}/issues/{n}"),
            "commits_url": format!("{api}/pulls/{n}/commits"),
            "review_comments_url": format!("{api}/pulls/{n}/comments"),
            "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
            "comments_url": format!("{api}/issues/{n}/comments"),
            "statuses_url": format!("{api}/statuses/{head_sha}"),
            "number": n,
            "state": pull.state,
            "locked": false,
            "title": pull.title,
            "user": simple_user(base, &pull.user),
            "body": pull.body,
        });
        super::shapes::extend(
            &mut value,
            json!({
                "labels": [],
                "milestone": null,
                "active_lock_reason": null,
                "created_at": iso(pull.created_at),
                "updated_at": iso(pull.created_at),
                "closed_at": null,
                "merged_at": null,
                "merge_commit_sha": null,
                "assignee": null,
                "assignees": [],
                "requested_reviewers": [],
                "requested_teams": [],
                "head": side(&pull.head),
                "base": side(&pull.base),
                "_links": links,
                "author_association": "MEMBER",
                "auto_merge": null,
                "draft": false,
            }),
        );
        if full {
            let (ahead, changes) = match (
                world.git.branch_head(&pull.base),
                world.git.branch_head(&pull.head),
            ) {
                (Some(b), Some(h)) => {
                    let c = Comparison::of(&world.git, &b, &h);
                    let files = world
                        .git
                        .diff(&world.git.tree_of(&c.merge_base), &world.git.tree_of(&h));
                    (c.ahead.len(), files)
                }
                _ => (0, Vec::new()),
            };
            let extra = json!({
                "merged": false,
                "mergeable": null,
                "rebaseable": null,
                "mergeable_state": "unknown",
                "merged_by": null,
                "comments": 0,
                "review_comments": 0,
                "maintainer_can_modify": false,
                "commits": ahead,
                "additions": changes.iter().map(|c| c.additions).sum::<usize>(),
                "deletions": changes.iter().map(|c| c.deletions).sum::<usize>(),
                "changed_files": changes.len(),
            });
            super::shapes::extend(&mut value, extra);
        }
        value
    }
}

/// How `head` relates to `base`.
struct Comparison {
    merge_base: String,
    /// In `head` but not `base`, oldest first.
    ahead: Vec<String>,
    behind: usize,
}

impl Comparison {
    fn of(store: &Store, base: &str, head: &str) -> Comparison {
        let base_set: HashSet<String> = store.ancestors(base).into_iter().collect();
        let head_all = store.ancestors(head);
        let head_set: HashSet<&String> = head_all.iter().collect();
        let mut ahead: Vec<&CommitObj> = head_all
            .iter()
            .filter(|sha| !base_set.contains(*sha))
            .filter_map(|sha| store.commits.get(sha))
            .collect();
        ahead.sort_by_key(|c| c.committer.date);
        let behind = base_set
            .iter()
            .filter(|sha| !head_set.contains(sha))
            .count();
        // The newest common ancestor; breadth-first order from head breaks ties.
        let merge_base = head_all
            .iter()
            .filter(|sha| base_set.contains(*sha))
            .filter_map(|sha| store.commits.get(sha))
            .max_by_key(|c| c.committer.date)
            .map(|c| c.sha.clone())
            .unwrap_or_else(|| base.to_owned());
        Comparison {
            merge_base,
            ahead: ahead.into_iter().map(|c| c.sha.clone()).collect(),
            behind,
        }
    }
}

async fn get_repository(State(sim): State<GithubSim>, Base(base): Base) -> Response {
    let world = sim.world();
    Json(sim.repository_json(&world, &base)).into_response()
}

async fn get_branch(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let branch = params.get("branch").cloned().unwrap_or_default();
    let world = sim.world();
    let Some(sha) = world.git.branch_head(&branch) else {
        return error(StatusCode::NOT_FOUND, "Branch not found");
    };
    let commit = &world.git.commits[&sha];
    let api = sim.repo_api(&base);
    Json(json!({
        "name": branch,
        "commit": sim.commit_json(&world.git, &base, commit, false),
        "_links": {
            "self": format!("{api}/branches/{branch}"),
            "html": format!("{}/tree/{branch}", sim.repo_html()),
        },
        "protected": branch == sim.config().default_branch,
        "protection": {
            "enabled": branch == sim.config().default_branch,
            "required_status_checks": { "enforcement_level": "off", "contexts": [], "checks": [] },
        },
        "protection_url": format!("{api}/branches/{branch}/protection"),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct CommitsQuery {
    sha: Option<String>,
    path: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn list_commits(
    State(sim): State<GithubSim>,
    Base(base): Base,
    uri: Uri,
    Query(query): Query<CommitsQuery>,
) -> Response {
    let world = sim.world();
    let start = query
        .sha
        .clone()
        .unwrap_or_else(|| sim.config().default_branch.clone());
    let Some(head) = world.git.resolve(&start) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut bounds = [None, None];
    for (i, text) in [&query.since, &query.until].into_iter().enumerate() {
        if let Some(text) = text {
            match parse_iso(text) {
                Some(t) => bounds[i] = Some(t),
                None => return error(StatusCode::BAD_REQUEST, "Invalid time"),
            }
        }
    }
    let path = query
        .path
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty());
    let commits: Vec<&CommitObj> = world
        .git
        .history(&head)
        .into_iter()
        .filter(|c| bounds[0].is_none_or(|since| c.committer.date >= since))
        .filter(|c| bounds[1].is_none_or(|until| c.committer.date <= until))
        .filter(|c| {
            path.is_none_or(|p| {
                world
                    .git
                    .changes_of(c)
                    .iter()
                    .any(|f| f.filename == p || f.filename.starts_with(&format!("{p}/")))
            })
        })
        .collect();
    let (page, link) = paginate(commits, &query.page, &base, &uri);
    let items: Vec<Value> = page
        .into_iter()
        .map(|c| sim.commit_json(&world.git, &base, c, false))
        .collect();
    with_link(StatusCode::OK, Value::Array(items), link)
}

async fn get_commit(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let name = params.get("sha").cloned().unwrap_or_default();
    let world = sim.world();
    match world.git.resolve(&name) {
        Some(sha) => {
            Json(sim.commit_json(&world.git, &base, &world.git.commits[&sha], true)).into_response()
        }
        None => unprocessable(&format!("No commit found for SHA: {name}"), Vec::new()),
    }
}

async fn compare(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
    Query(page): Query<PageQuery>,
    uri: Uri,
) -> Response {
    let basehead = params.get("basehead").cloned().unwrap_or_default();
    let Some((base_name, head_name)) = basehead
        .split_once("...")
        .or_else(|| basehead.split_once(".."))
    else {
        return not_found();
    };
    // `owner:branch` names a fork's branch; here there is only the one repository.
    let strip = |name: &str| {
        name.split_once(':')
            .map_or(name, |(_, branch)| branch)
            .to_owned()
    };
    let world = sim.world();
    let (Some(b), Some(h)) = (
        world.git.resolve(&strip(base_name)),
        world.git.resolve(&strip(head_name)),
    ) else {
        return not_found();
    };
    let c = Comparison::of(&world.git, &b, &h);
    let status = match (c.ahead.len(), c.behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let files = world
        .git
        .diff(&world.git.tree_of(&c.merge_base), &world.git.tree_of(&h));
    let total = c.ahead.len();
    let (commits, link) = paginate(c.ahead.clone(), &page, &base, &uri);
    let api = sim.repo_api(&base);
    let html = sim.repo_html();
    let owner = &sim.config().owner;
    let body = json!({
        "url": format!("{api}/compare/{basehead}"),
        "html_url": format!("{html}/compare/{basehead}"),
        "permalink_url": format!("{html}/compare/{owner}:{b}...{owner}:{h}"),
        "diff_url": format!("{html}/compare/{basehead}.diff"),
        "patch_url": format!("{html}/compare/{basehead}.patch"),
        "base_commit": sim.commit_json(&world.git, &base, &world.git.commits[&b], false),
        "merge_base_commit": sim.commit_json(&world.git, &base, &world.git.commits[&c.merge_base], false),
        "status": status,
        "ahead_by": total,
        "behind_by": c.behind,
        "total_commits": total,
        "commits": commits.iter().map(|sha| sim.commit_json(&world.git, &base, &world.git.commits[sha], false)).collect::<Vec<_>>(),
        "files": sim.files_json(&base, &h, &files),
    });
    with_link(StatusCode::OK, body, link)
}

#[derive(Debug, Deserialize)]
struct RefQuery {
    #[serde(rename = "ref")]
    name: Option<String>,
}

async fn get_root_contents(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Query(query): Query<RefQuery>,
) -> Response {
    contents(&sim, &base, "", query.name)
}

async fn get_contents(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<RefQuery>,
) -> Response {
    let path = params.get("path").cloned().unwrap_or_default();
    contents(&sim, &base, path.trim_matches('/'), query.name)
}

/// GitHub's base64: wrapped with a newline every 60 characters.
fn wrapped_base64(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn contents(sim: &GithubSim, base: &str, path: &str, name: Option<String>) -> Response {
    let world = sim.world();
    let name = name.unwrap_or_else(|| sim.config().default_branch.clone());
    let Some(sha) = world.git.resolve(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("No commit found for the ref {name}"),
        );
    };
    let tree = world.git.tree_of(&sha);
    let api = sim.repo_api(base);
    let html = sim.repo_html();
    let entry = |path: &str, kind: &str, sha: &str, size: usize| {
        let (git, html_kind) = if kind == "dir" {
            (format!("{api}/git/trees/{sha}"), "tree")
        } else {
            (format!("{api}/git/blobs/{sha}"), "blob")
        };
        let self_url = format!("{api}/contents/{path}?ref={name}");
        let html_url = format!("{html}/{html_kind}/{name}/{path}");
        json!({
            "type": kind,
            "size": size,
            "name": path.rsplit('/').next().unwrap_or(path),
            "path": path,
            "sha": sha,
            "url": self_url,
            "git_url": git,
            "html_url": html_url,
            "download_url": if kind == "dir" { Value::Null } else {
                json!(format!("https://raw.githubusercontent.com/{}/{}/{name}/{path}", sim.config().owner, sim.config().repo))
            },
            "_links": { "self": self_url, "git": git, "html": html_url },
        })
    };
    if let Some(blob) = tree.get(path) {
        let text = world.git.blobs.get(blob).cloned().unwrap_or_default();
        let mut file = entry(path, "file", blob, text.len());
        file["encoding"] = json!("base64");
        file["content"] = json!(wrapped_base64(&text));
        return Json(file).into_response();
    }
    let dir = if path.is_empty() {
        tree.clone()
    } else {
        subtree(&tree, path)
    };
    if dir.is_empty() {
        return not_found();
    }
    let mut items: BTreeMap<String, Value> = BTreeMap::new();
    for (rel, blob) in &dir {
        let full = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}/{name}")
            }
        };
        match rel.split_once('/') {
            None => {
                let size = world.git.blobs.get(blob).map_or(0, String::len);
                items.insert(rel.clone(), entry(&full(rel), "file", blob, size));
            }
            Some((sub, _)) if !items.contains_key(sub) => {
                let body: String = subtree(&dir, sub)
                    .iter()
                    .map(|(p, s)| format!("{p} {s}\n"))
                    .collect();
                let sub_sha = short_hash("tree", &body);
                items.insert(sub.to_owned(), entry(&full(sub), "dir", &sub_sha, 0));
            }
            Some(_) => {}
        }
    }
    Json(Value::Array(items.into_values().collect())).into_response()
}

async fn get_git_commit(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let sha = params.get("sha").cloned().unwrap_or_default();
    let world = sim.world();
    match world.git.commits.get(&sha) {
        Some(commit) => Json(sim.git_commit_json(&base, commit)).into_response(),
        None => not_found(),
    }
}

#[derive(Debug, Deserialize)]
struct GitUserBody {
    name: String,
    email: String,
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NewCommit {
    message: Option<String>,
    tree: Option<String>,
    #[serde(default)]
    parents: Vec<String>,
    author: Option<GitUserBody>,
    committer: Option<GitUserBody>,
}

async fn create_git_commit(
    State(sim): State<GithubSim>,
    Base(base): Base,
    body: Bytes,
) -> Response {
    let body: NewCommit = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let (Some(message), Some(tree)) = (body.message, body.tree) else {
        return unprocessable(
            "Invalid request.\n\n\"message\" and \"tree\" weren't supplied.",
            Vec::new(),
        );
    };
    let mut world = sim.world();
    if !world.git.trees.contains_key(&tree) {
        return unprocessable("Tree SHA does not exist", Vec::new());
    }
    if let Some(missing) = body
        .parents
        .iter()
        .find(|p| !world.git.commits.contains_key(*p))
    {
        return unprocessable(&format!("Parent SHA does not exist: {missing}"), Vec::new());
    }
    let at = super::now();
    let user = &sim.config().user;
    let signature = |given: Option<GitUserBody>| match given {
        Some(g) => Signature {
            name: g.name,
            email: g.email,
            date: g.date.as_deref().and_then(parse_iso).unwrap_or(at),
        },
        None => Signature {
            name: user.name.clone(),
            email: user.email.clone(),
            date: at,
        },
    };
    let author = signature(body.author);
    let committer = match body.committer {
        Some(c) => signature(Some(c)),
        None => author.clone(),
    };
    let login = (author.email == user.email).then(|| user.login.clone());
    let sha = world.git.insert_commit(CommitObj {
        sha: String::new(),
        tree,
        parents: body.parents,
        message,
        author,
        committer,
        login,
    });
    sim.count(|c| c.commits_created += 1);
    let value = sim.git_commit_json(&base, &world.git.commits[&sha]);
    created(value)
}

/// 201 with the new object's `Location`.
fn created(value: Value) -> Response {
    let location = value["url"].as_str().unwrap_or_default().to_owned();
    let mut response = (StatusCode::CREATED, Json(value)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[derive(Debug, Deserialize)]
struct TreeQuery {
    recursive: Option<String>,
}

async fn get_tree(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<TreeQuery>,
) -> Response {
    let name = params.get("sha").cloned().unwrap_or_default();
    let world = sim.world();
    // A commit-ish names its tree, as on GitHub.
    let sha = if world.git.trees.contains_key(&name) {
        name
    } else {
        match world.git.resolve(&name) {
            Some(commit) => world.git.commits[&commit].tree.clone(),
            None => return not_found(),
        }
    };
    let recursive = query
        .recursive
        .as_deref()
        .is_some_and(|r| !r.is_empty() && r != "0" && r != "false");
    match sim.tree_json(&world.git, &base, &sha, recursive) {
        Some(tree) => Json(tree).into_response(),
        None => not_found(),
    }
}

#[derive(Debug, Deserialize)]
struct NewTreeEntry {
    path: Option<String>,
    mode: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `Some(None)` is an explicit `null`: delete the path.
    #[serde(default, deserialize_with = "explicit_null")]
    sha: Option<Option<String>>,
    content: Option<String>,
}

fn explicit_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

#[derive(Debug, Deserialize)]
struct NewTree {
    tree: Option<Vec<NewTreeEntry>>,
    base_tree: Option<String>,
}

async fn create_tree(State(sim): State<GithubSim>, Base(base): Base, body: Bytes) -> Response {
    let body: NewTree = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(entries) = body.tree else {
        return unprocessable("Invalid request.\n\n\"tree\" wasn't supplied.", Vec::new());
    };
    let mut world = sim.world();
    let mut tree = match &body.base_tree {
        None => Tree::new(),
        Some(sha) => match world.git.trees.get(sha) {
            Some(tree) => tree.clone(),
            None => {
                let Some(commit) = world.git.commits.get(sha) else {
                    return unprocessable(
                        &format!("Invalid tree info: base_tree {sha}"),
                        Vec::new(),
                    );
                };
                world.git.trees[&commit.tree].clone()
            }
        },
    };
    for entry in entries {
        let Some(path) = entry.path.map(|p| p.trim_matches('/').to_owned()) else {
            return unprocessable("Invalid tree info: every entry needs a path", Vec::new());
        };
        if let Some(mode) = &entry.mode
            && !["100644", "100755", "040000", "160000", "120000"].contains(&mode.as_str())
        {
            return unprocessable(&format!("Invalid tree info: mode {mode}"), Vec::new());
        }
        let kind = entry.kind.as_deref().unwrap_or("blob");
        let prefix = format!("{path}/");
        match (entry.sha, entry.content) {
            (Some(Some(_)), Some(_)) => {
                return unprocessable(
                    "Invalid tree info: give either sha or content, not both",
                    Vec::new(),
                );
            }
            (_, Some(content)) => {
                let blob = world.git.insert_blob(&content);
                tree.insert(path, blob);
            }
            (Some(None), None) => {
                tree.retain(|p, _| *p != path && !p.starts_with(&prefix));
            }
            (Some(Some(sha)), None) if kind == "tree" => {
                let Some(sub) = world.git.trees.get(&sha).cloned() else {
                    return unprocessable(&format!("Invalid tree info: tree {sha}"), Vec::new());
                };
                tree.retain(|p, _| !p.starts_with(&prefix));
                for (p, s) in sub {
                    tree.insert(format!("{path}/{p}"), s);
                }
            }
            (Some(Some(sha)), None) => {
                if !world.git.blobs.contains_key(&sha) {
                    return unprocessable(&format!("Invalid tree info: blob {sha}"), Vec::new());
                }
                tree.insert(path, sha);
            }
            (None, None) => {
                return unprocessable("Invalid tree info: entry needs sha or content", Vec::new());
            }
        }
    }
    let sha = world.git.insert_tree(tree);
    sim.count(|c| c.trees_created += 1);
    let value = sim
        .tree_json(&world.git, &base, &sha, true)
        .unwrap_or(Value::Null);
    created(value)
}

/// `heads/main` → `refs/heads/main`.
fn full_ref(name: &str) -> String {
    let name = name.trim_matches('/');
    if name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/{name}")
    }
}

async fn get_ref(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let name = full_ref(params.get("name").map(String::as_str).unwrap_or_default());
    let world = sim.world();
    match world.git.refs.get(&name) {
        Some(sha) => Json(sim.ref_json(&base, &name, sha)).into_response(),
        None => not_found(),
    }
}

async fn matching_refs(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let prefix = full_ref(params.get("name").map(String::as_str).unwrap_or_default());
    let world = sim.world();
    let items: Vec<Value> = world
        .git
        .refs
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .map(|(name, sha)| sim.ref_json(&base, name, sha))
        .collect();
    Json(Value::Array(items)).into_response()
}

#[derive(Debug, Deserialize)]
struct NewRef {
    #[serde(rename = "ref")]
    name: Option<String>,
    sha: Option<String>,
}

async fn create_ref(State(sim): State<GithubSim>, Base(base): Base, body: Bytes) -> Response {
    let body: NewRef = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let (Some(name), Some(sha)) = (body.name, body.sha) else {
        return unprocessable(
            "Invalid request.\n\n\"ref\" and \"sha\" weren't supplied.",
            Vec::new(),
        );
    };
    if !name.starts_with("refs/") || name.matches('/').count() < 2 {
        return unprocessable(
            "Reference name must start with 'refs/' and have at least two slashes.",
            Vec::new(),
        );
    }
    let mut world = sim.world();
    if world.git.refs.contains_key(&name) {
        return unprocessable("Reference already exists", Vec::new());
    }
    if !world.git.commits.contains_key(&sha) {
        return unprocessable("Object does not exist", Vec::new());
    }
    world.git.refs.insert(name.clone(), sha.clone());
    sim.count(|c| c.refs_created += 1);
    let pusher = sim.config().user.clone();
    world.pushed(&name, None, &sha, false, pusher);
    created(sim.ref_json(&base, &name, &sha))
}

#[derive(Debug, Deserialize)]
struct RefUpdate {
    sha: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn update_ref(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let name = full_ref(params.get("name").map(String::as_str).unwrap_or_default());
    let body: RefUpdate = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(sha) = body.sha else {
        return unprocessable("Invalid request.\n\n\"sha\" wasn't supplied.", Vec::new());
    };
    let mut world = sim.world();
    let Some(old) = world.git.refs.get(&name).cloned() else {
        return unprocessable("Reference does not exist", Vec::new());
    };
    if !world.git.commits.contains_key(&sha) {
        return unprocessable("Object does not exist", Vec::new());
    }
    let fast_forward = world.git.is_ancestor(&old, &sha);
    if !fast_forward && !body.force {
        return unprocessable("Update is not a fast forward", Vec::new());
    }
    world.git.refs.insert(name.clone(), sha.clone());
    sim.count(|c| c.ref_updates += 1);
    if old != sha {
        let pusher = sim.config().user.clone();
        world.pushed(&name, Some(&old), &sha, !fast_forward, pusher);
    }
    Json(sim.ref_json(&base, &name, &sha)).into_response()
}

impl World {
    /// A ref moved through the API: a `push` delivery, and `push` runs of
    /// the workflows that listen to the branch.
    fn pushed(
        &mut self,
        name: &str,
        before: Option<&str>,
        after: &str,
        forced: bool,
        pusher: Person,
    ) {
        self.outbox.push(super::webhooks::Event::Push {
            ref_name: name.to_owned(),
            before: before.map(str::to_owned),
            after: after.to_owned(),
            forced,
            pusher: pusher.clone(),
        });
        let Some(branch) = name.strip_prefix("refs/heads/") else {
            return;
        };
        let Some(commit) = self.git.commits.get(after).cloned() else {
            return;
        };
        let files: Vec<String> = self
            .actions
            .workflows
            .iter()
            .filter(|w| w.seed.push_branches.iter().any(|b| b == branch))
            .map(|w| w.seed.file.clone())
            .collect();
        for file in files {
            let created = self.actions.create_run(super::actions::NewRun {
                workflow_file: &file,
                branch,
                head_sha: after,
                event: "push",
                created_at: super::now(),
                outcome: None,
                actor: pusher.clone(),
                inputs: BTreeMap::new(),
                dispatched: false,
                title: commit.message.lines().next().unwrap_or_default().to_owned(),
            });
            if let Err(e) = created {
                tracing::warn!(error = %e, "a push run could not start");
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct PullsQuery {
    state: Option<String>,
    head: Option<String>,
    base: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn list_pulls(
    State(sim): State<GithubSim>,
    Base(base): Base,
    uri: Uri,
    Query(query): Query<PullsQuery>,
) -> Response {
    let state = query.state.as_deref().unwrap_or("open");
    if !["open", "closed", "all"].contains(&state) {
        return unprocessable(
            "Validation Failed",
            vec![json!({ "resource": "PullRequest", "field": "state", "code": "invalid" })],
        );
    }
    let world = sim.world();
    let head = query
        .head
        .as_deref()
        .map(|h| h.split_once(':').map_or(h, |(_, b)| b));
    let pulls: Vec<&Pull> = world
        .pulls
        .iter()
        .rev()
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| head.is_none_or(|h| p.head == h))
        .filter(|p| query.base.as_deref().is_none_or(|b| p.base == b))
        .collect();
    let (page, link) = paginate(pulls, &query.page, &base, &uri);
    let items: Vec<Value> = page
        .into_iter()
        .map(|p| sim.pull_json(&world, &base, p, false))
        .collect();
    with_link(StatusCode::OK, Value::Array(items), link)
}

#[derive(Debug, Deserialize)]
struct NewPull {
    title: Option<String>,
    head: Option<String>,
    base: Option<String>,
    body: Option<String>,
}

async fn create_pull(State(sim): State<GithubSim>, Base(base): Base, body: Bytes) -> Response {
    let body: NewPull = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let missing =
        |field: &str| json!({ "resource": "PullRequest", "field": field, "code": "missing_field" });
    let mut errors = Vec::new();
    for (field, value) in [
        ("title", &body.title),
        ("head", &body.head),
        ("base", &body.base),
    ] {
        if value.as_deref().is_none_or(str::is_empty) {
            errors.push(missing(field));
        }
    }
    if !errors.is_empty() {
        return unprocessable("Validation Failed", errors);
    }
    let head = body.head.unwrap_or_default();
    let head = head
        .split_once(':')
        .map_or(head.as_str(), |(_, b)| b)
        .to_owned();
    let target = body.base.unwrap_or_default();
    let mut world = sim.world();
    let invalid =
        |field: &str| json!({ "resource": "PullRequest", "field": field, "code": "invalid" });
    let (Some(head_sha), Some(base_sha)) =
        (world.git.branch_head(&head), world.git.branch_head(&target))
    else {
        let field = if world.git.branch_head(&head).is_none() {
            "head"
        } else {
            "base"
        };
        return unprocessable("Validation Failed", vec![invalid(field)]);
    };
    if world
        .pulls
        .iter()
        .any(|p| p.state == "open" && p.head == head && p.base == target)
    {
        return unprocessable(
            "Validation Failed",
            vec![json!({ "resource": "PullRequest", "code": "custom",
                "message": format!("A pull request already exists for {}:{head}.", sim.config().owner) })],
        );
    }
    if Comparison::of(&world.git, &base_sha, &head_sha)
        .ahead
        .is_empty()
    {
        return unprocessable(
            "Validation Failed",
            vec![json!({ "resource": "PullRequest", "code": "custom",
                "message": format!("No commits between {target} and {head}") })],
        );
    }
    let number = world.pulls.len() as u64 + 1;
    let pull = Pull {
        number,
        title: body.title.unwrap_or_default(),
        body: body.body,
        head,
        base: target,
        state: "open",
        user: sim.config().user.login.clone(),
        created_at: super::now(),
    };
    world.pulls.push(pull.clone());
    sim.count(|c| c.pulls_created += 1);
    created(sim.pull_json(&world, &base, &pull, true))
}
