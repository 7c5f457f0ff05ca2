//! The schedule: one task per target, each on its own fixed grid of ticks,
//! spread over the interval so that thousands of targets do not fire at once.
//! A [`Watcher`] keeps the running set equal to a list it is given again and
//! again (the platform's targets change while it runs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Target;
use crate::content::Phrases;
use crate::fetch::{Fetcher, Observation};
use crate::monitor::{AlertEvent, Baseline, Monitor};

/// Where a watch reports. Called from many tasks at once; `key` names the
/// target as the caller did.
pub trait Sink: Send + Sync + 'static {
    /// An alert opened or closed.
    fn alert(&self, key: &str, event: AlertEvent);
    /// A check finished; `late` is how long after its planned time it started.
    fn checked(&self, _key: &str, _monitor: &Monitor, _observation: &Observation, _late: Duration) {
    }
}

struct Running {
    target: Target,
    stop: watch::Sender<bool>,
    task: JoinHandle<Monitor>,
}

/// Targets being watched, by key.
pub struct Watcher {
    fetcher: Arc<Fetcher>,
    phrases: Arc<Phrases>,
    sink: Arc<dyn Sink>,
    running: HashMap<String, Running>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Watcher")
            .field("targets", &self.running.len())
            .finish()
    }
}

impl Watcher {
    pub fn new(phrases: Phrases, sink: Arc<dyn Sink>) -> Watcher {
        Watcher {
            fetcher: Arc::new(Fetcher::new()),
            phrases: Arc::new(phrases),
            sink,
            running: HashMap::new(),
        }
    }

    /// Checks only public addresses (see [`Fetcher::public_only`]).
    pub fn public_only(mut self) -> Watcher {
        self.fetcher = Arc::new(Fetcher::public_only());
        self
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Makes the running targets exactly `targets`: new keys start (their
    /// first checks spread over their interval), changed ones restart with
    /// their baseline, gone ones stop. Each may bring a baseline learnt before.
    pub fn sync(&mut self, targets: Vec<(String, Target, Option<Baseline>)>) {
        let wanted: HashMap<&str, usize> = targets
            .iter()
            .enumerate()
            .map(|(index, (key, ..))| (key.as_str(), index))
            .collect();
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(key, running)| {
                wanted
                    .get(key.as_str())
                    .is_none_or(|&index| targets[index].1 != running.target)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            if let Some(running) = self.running.remove(&key) {
                let _ = running.stop.send(true);
            }
        }
        let start = Instant::now();
        let count = targets.len().max(1) as u32;
        for (index, (key, target, baseline)) in targets.into_iter().enumerate() {
            if self.running.contains_key(&key) {
                continue;
            }
            let offset = target
                .interval
                .mul_f64(f64::from(index as u32 % count) / f64::from(count));
            let (stop, stopped) = watch::channel(false);
            let shared = Arc::new(target.clone());
            let monitor =
                Monitor::with_baseline(shared, self.phrases.clone(), baseline.unwrap_or_default());
            let task = tokio::spawn(run_target(
                key.clone(),
                monitor,
                self.fetcher.clone(),
                self.sink.clone(),
                stopped,
                start + offset,
            ));
            self.running.insert(key, Running { target, stop, task });
        }
    }

    /// Stops every target; returns their final state.
    pub async fn stop(self) -> Vec<Monitor> {
        for running in self.running.values() {
            let _ = running.stop.send(true);
        }
        let mut monitors = Vec::with_capacity(self.running.len());
        for (_, running) in self.running {
            if let Ok(monitor) = running.task.await {
                monitors.push(monitor);
            }
        }
        monitors
    }
}

/// Watches `targets` (keyed by name, each with the baseline learnt before,
/// if any) until `stop` turns true; returns each target's final state.
pub async fn watch(
    targets: Vec<(Target, Option<Baseline>)>,
    phrases: Phrases,
    sink: Arc<dyn Sink>,
    mut stop: watch::Receiver<bool>,
) -> Vec<Monitor> {
    let mut watcher = Watcher::new(phrases, sink);
    watcher.sync(
        targets
            .into_iter()
            .map(|(target, baseline)| (target.name.clone(), target, baseline))
            .collect(),
    );
    let _ = stop.wait_for(|stopped| *stopped).await;
    let mut monitors = watcher.stop().await;
    monitors.sort_by(|a, b| a.target().name.cmp(&b.target().name));
    monitors
}

async fn run_target(
    key: String,
    mut monitor: Monitor,
    fetcher: Arc<Fetcher>,
    sink: Arc<dyn Sink>,
    mut stop: watch::Receiver<bool>,
    first: Instant,
) -> Monitor {
    let interval = monitor.target().interval;
    // Regular checks stay on this grid; confirmations happen between ticks.
    let mut grid = first;
    let mut next = first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|stopped| *stopped) => return monitor,
        }
        let late = Instant::now().saturating_duration_since(next);
        let observation = tokio::select! {
            observation = fetcher.check(monitor.target()) => observation,
            _ = stop.wait_for(|stopped| *stopped) => return monitor,
        };
        for event in monitor.observe(&observation) {
            sink.alert(&key, event);
        }
        sink.checked(&key, &monitor, &observation, late);
        let now = Instant::now();
        while grid <= now {
            grid += interval;
        }
        let delay = monitor.next_delay();
        next = if delay < interval {
            (now + delay).min(grid)
        } else {
            grid
        };
    }
}

/// Checks every target once, all at the same time, for `crrt watch --once`.
pub async fn check_once(targets: Vec<Target>, phrases: Phrases) -> Vec<(Monitor, Observation)> {
    let fetcher = Arc::new(Fetcher::new());
    let phrases = Arc::new(phrases);
    let mut tasks = Vec::with_capacity(targets.len());
    for target in targets {
        let fetcher = fetcher.clone();
        let mut monitor = Monitor::new(Arc::new(target), phrases.clone());
        tasks.push(tokio::spawn(async move {
            let observation = fetcher.check(monitor.target()).await;
            monitor.observe(&observation);
            (monitor, observation)
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(result) = task.await {
            results.push(result);
        }
    }
    results
}
