//! The schedule: one task per target, each on its own fixed grid of ticks,
//! spread over the interval so that thousands of targets do not fire at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::Target;
use crate::content::Phrases;
use crate::fetch::{Fetcher, Observation};
use crate::monitor::{AlertEvent, Monitor};

/// Where a watch reports. Called from many tasks at once.
pub trait Sink: Send + Sync + 'static {
    /// An alert opened or closed.
    fn alert(&self, event: AlertEvent);
    /// A check finished; `late` is how long after its planned time it started.
    fn checked(&self, _monitor: &Monitor, _observation: &Observation, _late: Duration) {}
}

/// Watches `targets` until `stop` turns true; returns each target's final state.
pub async fn watch(
    targets: Vec<Target>,
    phrases: Phrases,
    sink: Arc<dyn Sink>,
    stop: watch::Receiver<bool>,
) -> Vec<Monitor> {
    let fetcher = Arc::new(Fetcher::new());
    let phrases = Arc::new(phrases);
    let count = targets.len().max(1) as u32;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(targets.len());
    for (index, target) in targets.into_iter().enumerate() {
        // Spread first checks evenly over the interval, the first at once.
        let offset = target
            .interval
            .mul_f64(f64::from(index as u32 % count) / f64::from(count));
        let monitor = Monitor::new(Arc::new(target), phrases.clone());
        tasks.push(tokio::spawn(run_target(
            monitor,
            fetcher.clone(),
            sink.clone(),
            stop.clone(),
            start + offset,
        )));
    }
    let mut monitors = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(monitor) = task.await {
            monitors.push(monitor);
        }
    }
    monitors
}

async fn run_target(
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
            sink.alert(event);
        }
        sink.checked(&monitor, &observation, late);
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
