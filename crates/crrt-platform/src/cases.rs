//! Cases under a mission, created empty or from a playbook that pre-fills
//! their tasks; tasks (assignee, status, due date); notes in Markdown,
//! rendered to HTML with every way of running script removed.

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag};
use serde::{Deserialize, Serialize};

use crate::policy::{self, Action};
use crate::{Actor, Page, Platform, PlatformError, Result, audit, new_id, now};
pub use crrt_store::{Case, Note, Task};

/// Playbooks and the tasks they start a case with.
pub const PLAYBOOKS: &[(&str, &[&str])] = &[
    (
        "wiper",
        &[
            "Isolate affected hosts; keep them powered for memory capture where possible",
            "Acquire memory and disk images of a wiped and a surviving host",
            "Collect EVTX, scheduled tasks, services and driver loads from the domain controller",
            "Identify the wiper and its deployment path (GPO, scheduled task, PsExec)",
            "Hunt for the same indicators across the estate",
            "Check backups are intact and offline before restoring",
        ],
    ),
    (
        "ddos",
        &[
            "Characterise the attack: vectors, sources, peak rates",
            "Coordinate filtering with upstream providers and the CDN",
            "Protect DNS and origin addresses from direct attack",
            "Monitor service availability and report to the requester",
        ],
    ),
    (
        "defacement",
        &[
            "Preserve the defaced pages and web server logs",
            "Find the entry point: CMS, plugin, credentials, upload",
            "Hunt web server logs for webshell access",
            "Restore from a known-good source and rotate credentials",
            "Set up content watching for recurrence",
        ],
    ),
    (
        "ransomware",
        &[
            "Contain: isolate hosts, disable compromised accounts",
            "Identify the strain and check for a public decryptor",
            "Establish the initial access vector and dwell time",
            "Assess data exfiltration (leak-site monitoring)",
            "Plan restoration from verified backups",
        ],
    ),
    (
        "vulnerability-assessment",
        &[
            "Agree scope and rules of engagement in writing",
            "Inventory external exposure",
            "Scan and verify findings manually",
            "Report with prioritised remediation",
        ],
    ),
];

/// A new case.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    pub title: String,
    /// One of [`PLAYBOOKS`], or none for an empty case.
    #[serde(default)]
    pub playbook: Option<String>,
}

/// A new task.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub assignee_id: Option<String>,
    #[serde(default)]
    pub due_on: Option<String>,
}

/// Changes to a task; absent fields stay as they are. `assignee_id: ""`
/// unassigns.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskUpdate {
    pub version: i64,
    pub title: Option<String>,
    pub assignee_id: Option<String>,
    pub status: Option<String>,
    pub due_on: Option<String>,
}

/// A case with its tasks and notes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    #[serde(flatten)]
    pub case: Case,
    pub tasks: Vec<Task>,
    pub notes: Vec<Note>,
}

const TASK_STATUSES: &[&str] = &["open", "in_progress", "done"];

fn title(text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 300 {
        return Err(PlatformError::Invalid(
            "a title needs 1 to 300 characters".into(),
        ));
    }
    Ok(text.to_owned())
}

fn date(text: &str) -> Result<String> {
    text.parse::<jiff::civil::Date>()
        .map(|d| d.to_string())
        .map_err(|_| PlatformError::Invalid(format!("{text:?} is not a date (YYYY-MM-DD)")))
}

impl Platform {
    pub(crate) async fn mission_for_work(
        &self,
        actor: &Actor,
        mission_id: &str,
        write: bool,
    ) -> Result<crrt_store::Mission> {
        let mission = self.store.mission(mission_id).await?;
        if let Some(mission) = mission {
            let member = self
                .store
                .is_mission_member(&mission.id, &actor.user.id)
                .await?;
            if policy::allowed(
                actor,
                Action::ReadMission {
                    mission: &mission,
                    member,
                },
            ) {
                if write {
                    policy::require(
                        actor,
                        Action::WorkOnMission {
                            mission: &mission,
                            member,
                        },
                    )?;
                }
                return Ok(mission);
            }
        }
        Err(PlatformError::NotFound(format!("mission {mission_id}")))
    }

    /// A case and its mission, if the actor may read them (else "not
    /// found"), and whether the actor is on the mission's team.
    pub(crate) async fn case_access(
        &self,
        actor: &Actor,
        case_id: &str,
    ) -> Result<(crrt_store::Case, crrt_store::Mission, bool)> {
        let not_found = || PlatformError::NotFound(format!("case {case_id}"));
        let case = self.store.case(case_id).await?.ok_or_else(not_found)?;
        let mission = self
            .store
            .mission(&case.mission_id)
            .await?
            .ok_or_else(not_found)?;
        let member = self
            .store
            .is_mission_member(&mission.id, &actor.user.id)
            .await?;
        if !policy::allowed(
            actor,
            Action::ReadMission {
                mission: &mission,
                member,
            },
        ) {
            return Err(not_found());
        }
        Ok((case, mission, member))
    }

    /// A case the actor may read; with `write`, also work on.
    pub(crate) async fn case_for_work(
        &self,
        actor: &Actor,
        case_id: &str,
        write: bool,
    ) -> Result<Case> {
        let (case, mission, member) = self.case_access(actor, case_id).await?;
        if write {
            policy::require(
                actor,
                Action::WorkOnMission {
                    mission: &mission,
                    member,
                },
            )?;
        }
        Ok(case)
    }

    pub async fn create_case(
        &self,
        actor: &Actor,
        mission_id: &str,
        new: NewCase,
    ) -> Result<CaseView> {
        let mission = self.mission_for_work(actor, mission_id, true).await?;
        if mission.status == "closed" {
            return Err(PlatformError::Conflict(
                "a closed mission takes no new cases".into(),
            ));
        }
        let tasks: &[&str] = match new.playbook.as_deref() {
            None => &[],
            Some(name) => PLAYBOOKS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, tasks)| *tasks)
                .ok_or_else(|| {
                    PlatformError::Invalid(format!(
                        "playbook {name:?} is unknown; known: {}",
                        PLAYBOOKS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        };
        let at = now();
        let case = Case {
            id: new_id(),
            mission_id: mission.id.clone(),
            title: title(&new.title)?,
            playbook: new.playbook,
            status: "open".into(),
            version: 1,
            created_by: actor.user.id.clone(),
            created_at: at.clone(),
            updated_at: at.clone(),
        };
        let tasks: Vec<Task> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| Task {
                id: new_id(),
                case_id: case.id.clone(),
                title: (*t).to_owned(),
                assignee_id: None,
                status: "open".into(),
                due_on: None,
                position: i as i64 + 1,
                version: 1,
                created_at: at.clone(),
                updated_at: at.clone(),
            })
            .collect();
        let mut tx = self.store.begin().await?;
        tx.insert_case(&case).await?;
        for task in &tasks {
            tx.insert_task(task).await?;
        }
        tx.append_audit(&audit(
            Some(actor),
            "case.create",
            "case",
            &case.id,
            None,
            Some(&case),
        ))
        .await?;
        tx.commit().await?;
        Ok(CaseView {
            case,
            tasks,
            notes: Vec::new(),
        })
    }

    pub async fn cases(&self, actor: &Actor, mission_id: &str, page: Page) -> Result<Vec<Case>> {
        let mission = self.mission_for_work(actor, mission_id, false).await?;
        Ok(self.store.cases(&mission.id, page).await?)
    }

    pub async fn case(&self, actor: &Actor, case_id: &str) -> Result<CaseView> {
        let case = self.case_for_work(actor, case_id, false).await?;
        Ok(CaseView {
            tasks: self.store.tasks(&case.id).await?,
            notes: self
                .store
                .notes(
                    &case.id,
                    Page {
                        limit: 500,
                        offset: 0,
                    },
                )
                .await?,
            case,
        })
    }

    async fn check_assignee(&self, mission_id: &str, assignee: &str) -> Result<()> {
        if !self.store.is_mission_member(mission_id, assignee).await? {
            return Err(PlatformError::Invalid(format!(
                "{assignee} is not on this mission's team"
            )));
        }
        Ok(())
    }

    pub async fn add_task(&self, actor: &Actor, case_id: &str, new: NewTask) -> Result<Task> {
        let case = self.case_for_work(actor, case_id, true).await?;
        if let Some(assignee) = &new.assignee_id {
            self.check_assignee(&case.mission_id, assignee).await?;
        }
        let existing = self.store.tasks(&case.id).await?;
        let at = now();
        let task = Task {
            id: new_id(),
            case_id: case.id.clone(),
            title: title(&new.title)?,
            assignee_id: new.assignee_id,
            status: "open".into(),
            due_on: new.due_on.as_deref().map(date).transpose()?,
            position: existing.iter().map(|t| t.position).max().unwrap_or(0) + 1,
            version: 1,
            created_at: at.clone(),
            updated_at: at,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_task(&task).await?;
        tx.append_audit(&audit(
            Some(actor),
            "task.create",
            "task",
            &task.id,
            None,
            Some(&task),
        ))
        .await?;
        tx.commit().await?;
        Ok(task)
    }

    pub async fn update_task(
        &self,
        actor: &Actor,
        task_id: &str,
        update: TaskUpdate,
    ) -> Result<Task> {
        let before = self
            .store
            .task(task_id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("task {task_id}")))?;
        let case = self
            .case_for_work(actor, &before.case_id, true)
            .await
            .map_err(|e| match e {
                PlatformError::NotFound(_) => PlatformError::NotFound(format!("task {task_id}")),
                other => other,
            })?;
        if before.version != update.version {
            return Err(PlatformError::Conflict(format!(
                "task {task_id} is at version {}, not {}; reload it and try again",
                before.version, update.version
            )));
        }
        let mut after = before.clone();
        if let Some(t) = update.title {
            after.title = title(&t)?;
        }
        if let Some(status) = update.status {
            if !TASK_STATUSES.contains(&status.as_str()) {
                return Err(PlatformError::Invalid(format!(
                    "task status {status:?} is not one of: {}",
                    TASK_STATUSES.join(", ")
                )));
            }
            after.status = status;
        }
        if let Some(assignee) = update.assignee_id {
            if assignee.is_empty() {
                after.assignee_id = None;
            } else {
                self.check_assignee(&case.mission_id, &assignee).await?;
                after.assignee_id = Some(assignee);
            }
        }
        if let Some(due) = update.due_on {
            after.due_on = if due.is_empty() {
                None
            } else {
                Some(date(&due)?)
            };
        }
        after.version += 1;
        after.updated_at = now();
        let mut tx = self.store.begin().await?;
        tx.update_task(&after).await?;
        tx.append_audit(&audit(
            Some(actor),
            "task.update",
            "task",
            &after.id,
            Some(&before),
            Some(&after),
        ))
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn add_note(&self, actor: &Actor, case_id: &str, markdown: &str) -> Result<Note> {
        let case = self.case_for_work(actor, case_id, true).await?;
        if markdown.trim().is_empty() || markdown.len() > 100_000 {
            return Err(PlatformError::Invalid(
                "a note needs 1 byte to 100 kB of Markdown".into(),
            ));
        }
        let note = Note {
            id: new_id(),
            case_id: case.id,
            author_id: actor.user.id.clone(),
            markdown: markdown.to_owned(),
            html: render_markdown(markdown),
            created_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_note(&note).await?;
        tx.append_audit(&audit(
            Some(actor),
            "note.create",
            "note",
            &note.id,
            None,
            Some(&note),
        ))
        .await?;
        tx.commit().await?;
        Ok(note)
    }
}

/// Markdown to HTML that runs no script: raw HTML is shown as text, links
/// keep only http, https, mailto and relative targets, and images become
/// links (no requests to third parties when a note is opened).
pub fn render_markdown(markdown: &str) -> String {
    let safe_url = |url: &str| {
        let lower = url.trim().to_ascii_lowercase();
        let scheme = lower
            .split_once(':')
            .map(|(s, _)| s)
            .filter(|s| !s.contains('/') && !s.contains('?') && !s.contains('#'));
        match scheme {
            None => true,
            Some(s) => matches!(s, "http" | "https" | "mailto"),
        }
    };
    let events = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let dest_url = if safe_url(&dest_url) {
                dest_url
            } else {
                CowStr::from("#")
            };
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            })
        }
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => {
            let dest_url = if safe_url(&dest_url) {
                dest_url
            } else {
                CowStr::from("#")
            };
            Event::Start(Tag::Link {
                link_type: LinkType::Inline,
                dest_url,
                title,
                id,
            })
        }
        Event::End(pulldown_cmark::TagEnd::Image) => Event::End(pulldown_cmark::TagEnd::Link),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::render_markdown;

    fn check(markdown: &str, must_contain: &str) {
        let html = render_markdown(markdown);
        assert!(html.contains(must_contain), "{markdown:?} -> {html}");
        // Escaped text may mention these; live tags and targets may not.
        for forbidden in [
            "<script",
            "<a href=\"javascript",
            "<a href=\"data:",
            "<img",
            "<iframe",
        ] {
            assert!(
                !html.to_ascii_lowercase().contains(forbidden),
                "{markdown:?} -> {html}"
            );
        }
    }

    #[test]
    fn notes_keep_their_formatting_and_lose_every_script() {
        check("**bold** and `code`", "<strong>bold</strong>");
        check(
            "[report](https://cert.example/r)",
            "href=\"https://cert.example/r\"",
        );
        check("<script>alert(1)</script>", "&lt;script&gt;");
        check("x <img src=x onerror=alert(1)> y", "&lt;img");
        check("[click](javascript:alert(1))", "href=\"#\"");
        check("[click](JAVASCRIPT:alert(1))", "href=\"#\"");
        check("[click]( javascript:alert(1))", "href=\"#\"");
        check("[d](data:text/html;base64,PHNjcmlwdD4=)", "href=\"#\"");
        check(
            "![pixel](https://tracker.example/p.png)",
            "href=\"https://tracker.example/p.png\"",
        );
        check("<iframe src=x></iframe>", "&lt;iframe");
        check("[rel](/api/v1/cases)", "href=\"/api/v1/cases\"");
        check("<a href=\"javascript:x\">a</a>", "&lt;a");
    }
}
