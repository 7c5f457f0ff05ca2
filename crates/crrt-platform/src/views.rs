//! Read models for people rather than programs: what a dashboard shows and
//! the names behind the ids in what an actor was already allowed to read.

use std::collections::HashMap;

use crate::policy::{self, Action};
use crate::{Actor, Case, Platform, PlatformError, Result, StoredFinding, Task};

impl Platform {
    /// Open tasks assigned to the actor, with their case, in cases the actor
    /// may still read (a task on a mission one has left is not shown).
    pub async fn my_open_tasks(&self, actor: &Actor, limit: i64) -> Result<Vec<(Task, Case)>> {
        let mut out = Vec::new();
        for task in self.store.open_tasks_of(&actor.user.id, limit).await? {
            match self.case_access(actor, &task.case_id).await {
                Ok((case, _, _)) => out.push((task, case)),
                Err(PlatformError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The newest findings over a mission's cases.
    pub async fn latest_findings(
        &self,
        actor: &Actor,
        mission_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredFinding>> {
        let not_found = || PlatformError::NotFound(format!("mission {mission_id}"));
        let mission = self
            .store
            .mission(mission_id)
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
        Ok(self
            .store
            .latest_findings_of_mission(&mission.id, limit)
            .await?)
    }

    /// Display names for user ids the caller holds from a read it was
    /// allowed (authors, assignees, requesters); unknown ids are left out.
    pub async fn display_names(&self, ids: &[&str]) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        for id in ids {
            if out.contains_key(*id) {
                continue;
            }
            if let Some(user) = self.store.user(id).await? {
                out.insert(user.id, user.display_name);
            }
        }
        Ok(out)
    }

    /// Organisation names by id: the members, requesters and partners of
    /// the platform are known to everyone signed in to it.
    pub async fn organisation_names(&self) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        let mut offset = 0;
        loop {
            let page = self.store.orgs(crate::Page { limit: 500, offset }).await?;
            let n = page.len() as i64;
            out.extend(page.into_iter().map(|o| (o.id, o.name)));
            if n < 500 {
                return Ok(out);
            }
            offset += n;
        }
    }
}
