//! The sandbox's seeded history, as plain data: who committed what to which
//! branch and when, which commit brought which Alembic revision, how each
//! commit's pipeline ended and whether its build failed.
//!
//! It is deterministic for a seed (`flightdeck sandbox --seed N`): the same
//! seed gives the same commits, authors, outcomes and revision placement.
//! Times are offsets back from "now", so the history always looks recent.
//! Feeding it into the simulators is [`super::world`]'s job.

/// A committer of the sample repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: &'static str,
    pub email: &'static str,
    pub login: &'static str,
}

/// The people who commit to the sample repository; one name is not ASCII.
pub const PEOPLE: [Person; 5] = [
    Person {
        name: "Zoë Ramírez",
        email: "zoe@cuentadesanti.example",
        login: "zoe-ramirez",
    },
    Person {
        name: "Kenji Sato",
        email: "kenji@cuentadesanti.example",
        login: "ksato",
    },
    Person {
        name: "Amara Okafor",
        email: "amara@cuentadesanti.example",
        login: "amara-o",
    },
    Person {
        name: "Lukas Weber",
        email: "lukas@cuentadesanti.example",
        login: "lweber",
    },
    Person {
        name: "Priya Nair",
        email: "priya@cuentadesanti.example",
        login: "priyan",
    },
];

/// The pipeline's jobs and their steps, in order (`deploy.yml`): tests, the
/// Alembic drift check, then the migration, the Render deploy hook and the
/// post-deploy smoke test.
pub const PIPELINE: [(&str, &[&str]); 5] = [
    (
        "test",
        &[
            "Set up job",
            "Checkout",
            "Install uv",
            "Install dependencies",
            "Run pytest",
            "Complete job",
        ],
    ),
    (
        "alembic-drift",
        &[
            "Set up job",
            "Checkout",
            "Install dependencies",
            "alembic check",
            "Complete job",
        ],
    ),
    (
        "migrate",
        &[
            "Set up job",
            "Checkout",
            "Install dependencies",
            "alembic upgrade head",
            "Complete job",
        ],
    ),
    (
        "deploy",
        &["Set up job", "Trigger Render deploy hook", "Complete job"],
    ),
    (
        "smoke",
        &[
            "Set up job",
            "Smoke test against BACKEND_URL",
            "Complete job",
        ],
    ),
];

/// How a commit's pipeline run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiOutcome {
    Success,
    /// Failed at this job and step; later jobs did not run.
    FailedAt {
        job: &'static str,
        step: &'static str,
    },
}

impl CiOutcome {
    /// Whether the pipeline got as far as the Render deploy hook.
    pub fn deployed(self) -> bool {
        match self {
            CiOutcome::Success => true,
            CiOutcome::FailedAt { job, .. } => job == "smoke",
        }
    }
}

/// The two branches of the sample app: `main` deploys to production,
/// `staging` (one commit ahead) to staging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    Main,
    Staging,
}

impl Branch {
    pub fn name(self) -> &'static str {
        match self {
            Branch::Main => "main",
            Branch::Staging => "staging",
        }
    }
}

/// One commit of the seeded history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioCommit {
    pub message: String,
    /// Index into [`PEOPLE`].
    pub author: usize,
    /// How long before the sandbox started it was committed.
    pub minutes_ago: i64,
    /// The branch it was pushed to (staging's commits sit on top of main).
    pub branch: Branch,
    /// The Alembic revision (index into the revision history) it adds.
    pub adds_revision: Option<usize>,
    pub ci: CiOutcome,
    /// The Render build of this commit fails (the pipeline still fired the hook).
    pub build_fails: bool,
}

/// The whole seeded history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub seed: u64,
    /// Oldest first: main's commits, then staging's.
    pub commits: Vec<ScenarioCommit>,
}

/// Commit messages that are not about migrations; the seed picks and orders them.
const ORDINARY: [&str; 36] = [
    "Add request id to access logs",
    "Bump fastapi to 0.115",
    "Fix off-by-one in signal window",
    "Cache dataset listings for 30 s",
    "Tidy up the settings module",
    "Document the upload endpoint",
    "Retry S3 uploads on timeout",
    "Paginate /datasets",
    "Add health endpoint details",
    "Return 404 for unknown exports",
    "Speed up the simulator's batch endpoint",
    "Use uv in CI",
    "Pin numpy below 2.3",
    "Log slow queries over 200 ms",
    "Refactor signal generators into a package",
    "Fix timezone handling in exports",
    "Add rate limit to public endpoints",
    "Remove unused helpers",
    "Raise upload size limit to 50 MB",
    "Validate seed parameter range",
    "Add smoke test for /health",
    "Stream large CSV exports",
    "Fix flaky test_simulate_many",
    "Add CORS origin for the new frontend",
    "Handle empty datasets in summary",
    "Improve error messages for bad uploads",
    "Split settings per environment",
    "Add OpenAPI tags",
    "Upgrade pydantic to 2.9",
    "Make signal names case-insensitive",
    "Trim whitespace in dataset names",
    "Add index hint to the exports query",
    "Fix typo in README",
    "Add admin-only dataset purge endpoint",
    "Reduce Docker image size",
    "Update dependencies",
];

/// Messages every history has, because real repositories have them: markup
/// that must be shown as text, and non-ASCII text.
pub const MARKUP_MESSAGE: &str = "Validate uploads: reject <script>alert(1)</script> in names";
pub const NON_ASCII_MESSAGE: &str = "Añade exportación CSV — señales por día (día 1/2 ✓)";

/// A small deterministic generator (SplitMix64), enough for a seeded history.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5EED_F1D0_DECC_0000)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

impl Scenario {
    /// The history for `seed`, placing one commit per Alembic revision (given
    /// by message, in an order where parents come first) on main.
    pub fn generate(seed: u64, revision_messages: &[String]) -> Self {
        let revisions = revision_messages.len();
        let mut rng = SeededRng::new(seed);
        let main_len = 30 + rng.below(8) as usize;
        assert!(
            revisions + 2 < main_len,
            "more revisions than a history can hold"
        );

        // Messages: a seeded shuffle of the ordinary ones.
        let mut pool: Vec<&str> = ORDINARY.to_vec();
        for i in (1..pool.len()).rev() {
            pool.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut pool = pool.into_iter().cycle();

        // Revisions go on evenly spread commits after the first one (which
        // sets the project up), keeping their order.
        let stride = (main_len - 2) / revisions.max(1);
        let revision_at = |i: usize| -> Option<usize> {
            (i >= 1 && (i - 1).is_multiple_of(stride) && (i - 1) / stride < revisions)
                .then(|| (i - 1) / stride)
        };
        let free_from = |mut i: usize| {
            while revision_at(i).is_some() {
                i += 1;
            }
            i
        };
        let markup_at = free_from(3 + rng.below(5) as usize);
        let non_ascii_at = free_from(markup_at + 4 + rng.below(5) as usize);

        // Gaps are 1 to 9 hours; start far enough back to end before now.
        let mut minutes_ago = main_len as i64 * 9 * 60 + 60;
        let mut commits = Vec::with_capacity(main_len + 1);
        for i in 0..main_len {
            let adds_revision = revision_at(i);
            let message = if i == 0 {
                "Initial FastAPI backend with Alembic".to_owned()
            } else if let Some(r) = adds_revision {
                revision_messages[r].clone()
            } else if i == markup_at {
                MARKUP_MESSAGE.to_owned()
            } else if i == non_ascii_at {
                NON_ASCII_MESSAGE.to_owned()
            } else {
                pool.next().unwrap_or("Update dependencies").to_owned()
            };
            // Roughly one commit in six fails its pipeline, never the first
            // nor the last (main's head is the live release's source).
            let ci = if i > 0 && i + 1 < main_len && rng.below(6) == 0 {
                let (job, steps) = if rng.below(3) == 0 {
                    ("alembic-drift", PIPELINE[1].1)
                } else {
                    ("test", PIPELINE[0].1)
                };
                CiOutcome::FailedAt {
                    job,
                    step: steps[steps.len() - 2],
                }
            } else {
                CiOutcome::Success
            };
            commits.push(ScenarioCommit {
                message,
                author: rng.below(PEOPLE.len() as u64) as usize,
                minutes_ago,
                branch: Branch::Main,
                adds_revision,
                ci,
                build_fails: false,
            });
            minutes_ago -= 60 + rng.below(8 * 60) as i64;
        }
        // Every history has a failed run, whatever the dice said.
        if commits.iter().all(|c| c.ci == CiOutcome::Success) {
            commits[main_len / 2].ci = CiOutcome::FailedAt {
                job: "test",
                step: "Run pytest",
            };
        }
        // One deployed commit near the end has a build that fails on Render,
        // so the live release stays on the one before it.
        let failing = (main_len - 6..main_len - 1)
            .find(|&i| commits[i].ci == CiOutcome::Success && commits[i].adds_revision.is_none())
            .unwrap_or(main_len - 2);
        commits[failing].build_fails = true;
        commits[failing].message = "Switch image to python:3.13-slim".to_owned();
        // Staging is one commit ahead of main: work being tried before it ships.
        commits.push(ScenarioCommit {
            message: "Try batched inserts for signals".to_owned(),
            author: rng.below(PEOPLE.len() as u64) as usize,
            minutes_ago,
            branch: Branch::Staging,
            adds_revision: None,
            ci: CiOutcome::Success,
            build_fails: false,
        });
        Self { seed, commits }
    }

    /// The commits on `main`, oldest first.
    pub fn main(&self) -> impl Iterator<Item = &ScenarioCommit> {
        self.commits.iter().filter(|c| c.branch == Branch::Main)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages() -> Vec<String> {
        (1..=9).map(|i| format!("Migration {i}")).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_history_and_another_seed_another() {
        assert_eq!(
            Scenario::generate(7, &messages()),
            Scenario::generate(7, &messages())
        );
        assert_ne!(
            Scenario::generate(7, &messages()),
            Scenario::generate(8, &messages())
        );
    }

    #[test]
    fn a_history_has_what_real_repositories_have() {
        for seed in 0..50 {
            let s = Scenario::generate(seed, &messages());
            let main: Vec<_> = s.main().collect();
            assert!(
                (30..=40).contains(&main.len()),
                "seed {seed}: a few dozen commits"
            );
            let revisions: Vec<usize> = main.iter().filter_map(|c| c.adds_revision).collect();
            assert_eq!(
                revisions,
                (0..9).collect::<Vec<_>>(),
                "seed {seed}: in order, each once"
            );
            assert!(
                main.iter()
                    .any(|c| c.message.contains("<script>alert(1)</script>"))
            );
            assert!(main.iter().any(|c| !c.message.is_ascii()));
            assert_eq!(
                main.iter().filter(|c| c.build_fails).count(),
                1,
                "seed {seed}"
            );
            assert!(
                main.iter().any(|c| c.ci != CiOutcome::Success),
                "seed {seed}: a failed run"
            );
            assert_eq!(main.last().map(|c| c.ci), Some(CiOutcome::Success));
            let authors: std::collections::BTreeSet<_> = main.iter().map(|c| c.author).collect();
            assert!(authors.len() >= 3, "seed {seed}: several authors");
            assert!(
                s.commits
                    .windows(2)
                    .all(|w| w[0].minutes_ago > w[1].minutes_ago),
                "seed {seed}: oldest first, strictly"
            );
            assert_eq!(s.commits.last().map(|c| c.branch), Some(Branch::Staging));
        }
    }
}
