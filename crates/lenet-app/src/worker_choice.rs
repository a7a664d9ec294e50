//! Chooses, while a CPU run trains, between the whole worker pool and a single worker.
//!
//! With another busy process on a small machine, a fork-join kernel waits at every join for
//! whichever worker the scheduler has descheduled, and one worker then trains faster than two
//! (seed LeNet on the 2-core machine beside `yes > /dev/null`: 10,875–12,793 examples/sec
//! with one worker against 8,547–9,268 with two; 21,000–22,000 with two when it is quiet). The
//! CPU kernels' results do not depend on the worker count (their reductions are fixed per
//! shape; `nn-layers/tests/worker_count.rs`), so the choice changes the speed, never the run.
//!
//! Every [`PERIOD`] steps the next [`PROBE`] steps run on one worker and the [`PROBE`] after
//! them on the whole pool; the faster of the two serves until the next probe.

use std::time::{Duration, Instant};

/// Steps between the starts of two probes.
pub const PERIOD: u64 = 100;

/// Steps timed on each side of a probe.
pub const PROBE: u64 = 5;

/// The worker choice of one run.
pub struct WorkerChoice {
    /// The one-worker pool; `None` when there is nothing to choose (a GPU run, or a pool of
    /// one worker already).
    single: Option<rayon::ThreadPool>,
    /// Whether steps outside probes run on the single worker.
    use_single: bool,
    /// Steps run so far.
    steps: u64,
    /// The current probe's time on one worker and on the pool.
    probe: [Duration; 2],
}

impl WorkerChoice {
    /// A choice for a run on the CPU backend when `choose`, otherwise always the pool (a
    /// GPU run, or `--threads` given).
    pub fn new(choose: bool) -> anyhow::Result<WorkerChoice> {
        let single = if choose && rayon::current_num_threads() > 1 {
            Some(rayon::ThreadPoolBuilder::new().num_threads(1).build()?)
        } else {
            None
        };
        Ok(WorkerChoice {
            single,
            use_single: false,
            steps: 0,
            probe: [Duration::ZERO; 2],
        })
    }

    /// Whether the steps outside probes now run on a single worker.
    pub fn uses_single_worker(&self) -> bool {
        self.use_single
    }

    /// Runs one training step on the workers chosen for it, timing it when it is part of a
    /// probe.
    pub fn run<T: Send>(&mut self, step: impl FnOnce() -> T + Send) -> T {
        let Some(single) = &self.single else {
            return step();
        };
        let phase = self.steps % PERIOD;
        self.steps += 1;
        let on_single = match phase {
            p if p < PROBE => true,
            p if p < 2 * PROBE => false,
            _ => self.use_single,
        };
        let started = Instant::now();
        let out = if on_single {
            single.install(step)
        } else {
            step()
        };
        if phase < 2 * PROBE {
            self.probe[usize::from(!on_single)] += started.elapsed();
            if phase == 2 * PROBE - 1 {
                self.use_single = self.probe[0] < self.probe[1];
                self.probe = [Duration::ZERO; 2];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_choice_steps_run_where_they_are_called() {
        let mut c = WorkerChoice::new(false).unwrap();
        let here = std::thread::current().id();
        for _ in 0..2 * PERIOD {
            assert_eq!(c.run(|| std::thread::current().id()), here);
        }
        assert!(!c.uses_single_worker());
    }

    /// Runs a probe in a two-worker pool where the steps on `slow` workers (1 or 2) take 5 ms
    /// longer, then the rest of the period; returns the worker counts the period's steps saw
    /// after the probe.
    fn after_a_probe(slow: usize) -> (bool, Vec<usize>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let mut c = WorkerChoice::new(true).unwrap();
            let step = || {
                let workers = rayon::current_num_threads();
                if workers == slow {
                    std::thread::sleep(Duration::from_millis(5));
                }
                workers
            };
            for _ in 0..2 * PROBE {
                c.run(step);
            }
            let seen = (2 * PROBE..PERIOD).map(|_| c.run(step)).collect();
            (c.uses_single_worker(), seen)
        })
    }

    #[test]
    fn a_probe_keeps_the_faster_side_until_the_next() {
        let (single, seen) = after_a_probe(1);
        assert!(!single);
        assert!(seen.iter().all(|&w| w == 2), "{seen:?}");
        let (single, seen) = after_a_probe(2);
        assert!(single);
        assert!(seen.iter().all(|&w| w == 1), "{seen:?}");
    }
}
