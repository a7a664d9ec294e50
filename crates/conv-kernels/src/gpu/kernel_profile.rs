//! Where a GPU's time goes, kernel by kernel: snapshots of a profiling context's wall time per
//! entry point, and the time per step between two of them.

use std::fmt;
use std::time::Duration;

/// Wall time per GPU entry point since the context opened, at one moment
/// ([`crate::Device::kernel_times`]). Empty on host devices and on contexts that do not
/// profile (`FOVEA_GPU_PROFILE=1`, [`crate::GpuOptions::profile`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelTimes {
    /// Entry point and its wall time, sorted by name.
    pub times: Vec<(&'static str, Duration)>,
}

impl KernelTimes {
    /// Whether nothing was timed (a host device, or a context that does not profile).
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Each kernel's milliseconds per step since `earlier`, taken `steps` steps before this
    /// snapshot: largest first, kernels that did not run in between left out.
    pub fn per_step_since(&self, earlier: &KernelTimes, steps: u64) -> StepKernelTimes {
        let mut kernels: Vec<(&'static str, f64)> = self
            .times
            .iter()
            .map(|(kernel, now)| {
                let before = earlier
                    .times
                    .iter()
                    .find(|(k, _)| k == kernel)
                    .map_or(Duration::ZERO, |(_, t)| *t);
                let grown = now.saturating_sub(before);
                (*kernel, 1000.0 * grown.as_secs_f64() / steps.max(1) as f64)
            })
            .filter(|(_, ms)| *ms > 0.0)
            .collect();
        kernels.sort_by(|a, b| b.1.total_cmp(&a.1));
        StepKernelTimes { kernels }
    }
}

/// Milliseconds per step of each kernel, largest first ([`KernelTimes::per_step_since`]).
/// Displays as `97.3 in all: conv_bwd_weight 25.30, conv_fwd 17.00, ...`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepKernelTimes {
    /// Entry point and its milliseconds per step.
    pub kernels: Vec<(&'static str, f64)>,
}

impl StepKernelTimes {
    /// The step's milliseconds over all kernels.
    pub fn total_ms(&self) -> f64 {
        self.kernels.iter().fold(0.0, |sum, (_, ms)| sum + ms)
    }
}

impl fmt::Display for StepKernelTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} in all", self.total_ms())?;
        for (i, (kernel, ms)) in self.kernels.iter().enumerate() {
            write!(f, "{} {kernel} {ms:.2}", if i == 0 { ":" } else { "," })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_step_times_are_the_growth_over_the_steps_largest_first() {
        let ms = Duration::from_millis;
        let before = KernelTimes {
            times: vec![("a", ms(10)), ("b", ms(5))],
        };
        let after = KernelTimes {
            times: vec![("a", ms(14)), ("b", ms(25)), ("c", ms(2))],
        };
        let step = after.per_step_since(&before, 2);
        assert_eq!(step.kernels, vec![("b", 10.0), ("a", 2.0), ("c", 1.0)]);
        assert_eq!(step.total_ms(), 13.0);
        assert_eq!(step.to_string(), "13.0 in all: b 10.00, a 2.00, c 1.00");
        let idle = before.per_step_since(&before, 3);
        assert!(idle.kernels.is_empty());
        assert_eq!(idle.to_string(), "0.0 in all");
        assert!(KernelTimes::default().is_empty());
    }
}
