//! Device selection: the one parser of `--device` values and of `FOVEA_DEVICE`, and the
//! `auto` policy (a hardware GPU when one answers, else the fast CPU backend).

use super::Device;
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::named_choice;

/// A device as a user names it (`--device`, `FOVEA_DEVICE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DeviceKind {
    /// A hardware GPU when one answers, otherwise the fast CPU backend.
    #[default]
    Auto,
    /// The fast CPU backend.
    Cpu,
    /// Any GPU adapter, software ones (llvmpipe) included.
    Gpu,
    /// The naive reference kernels.
    Reference,
}

impl DeviceKind {
    /// Every kind with its name, in the order help texts list them.
    pub const ALL: [(DeviceKind, &'static str); 4] = [
        (DeviceKind::Auto, "auto"),
        (DeviceKind::Cpu, "cpu"),
        (DeviceKind::Gpu, "gpu"),
        (DeviceKind::Reference, "reference"),
    ];

    /// The name `parse` accepts for this kind.
    pub fn name(self) -> &'static str {
        named_choice::name_of(&Self::ALL, self, "auto")
    }

    /// Parses `auto`, `cpu`, `gpu` or `reference` (case and surrounding blanks ignored; the
    /// empty string is `auto`).
    pub fn parse(text: &str) -> Result<DeviceKind> {
        named_choice::parse(&Self::ALL, "device", "device", text)
    }

    /// The kind named by the environment variable `FOVEA_DEVICE`: `None` when it is unset or
    /// blank, an error naming the variable when it is not understood.
    pub fn from_env() -> Option<Result<DeviceKind>> {
        let v = std::env::var("FOVEA_DEVICE").ok()?;
        if v.trim().is_empty() {
            return None;
        }
        Some(
            Self::parse(&v)
                .map_err(|_| named_choice::env_error(&Self::ALL, "device", "FOVEA_DEVICE", &v)),
        )
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = crate::KernelError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A device picked by [`Device::auto`] or [`Device::select`], with the one-line reason.
#[derive(Clone, Debug)]
pub struct DeviceChoice {
    /// The device to use.
    pub device: Device,
    /// Why it was chosen, e.g. `no hardware GPU adapter ...; using the CPU backend`.
    pub reason: String,
}

impl Device {
    /// Picks a device: a hardware GPU when one answers in time, otherwise the CPU backend.
    /// `FOVEA_DEVICE` overrides: `cpu` forces the CPU backend without touching any GPU driver;
    /// `gpu` also accepts a software adapter (llvmpipe), falling back to the CPU backend with
    /// the reason when none exists; `reference` picks the naive kernels. Never fails.
    pub fn auto() -> DeviceChoice {
        let cpu = |reason: String| DeviceChoice {
            device: Device::cpu(),
            reason,
        };
        match DeviceKind::from_env() {
            Some(Ok(DeviceKind::Cpu)) => cpu("FOVEA_DEVICE=cpu: using the CPU backend".into()),
            Some(Ok(DeviceKind::Reference)) => DeviceChoice {
                device: Device::Reference,
                reason: "FOVEA_DEVICE=reference: using the reference kernels".into(),
            },
            Some(Ok(DeviceKind::Gpu)) => match GpuContext::shared(true) {
                Ok(ctx) => DeviceChoice {
                    reason: format!("FOVEA_DEVICE=gpu: using {}", ctx.info()),
                    device: Device::Gpu(ctx),
                },
                Err(e) => cpu(format!("FOVEA_DEVICE=gpu but {e}; using the CPU backend")),
            },
            Some(Err(e)) => {
                let mut c = Self::auto_hardware();
                c.reason = format!("{e}; {}", c.reason);
                c
            }
            Some(Ok(DeviceKind::Auto)) | None => Self::auto_hardware(),
        }
    }

    fn auto_hardware() -> DeviceChoice {
        match GpuContext::shared(false) {
            Ok(ctx) => DeviceChoice {
                reason: format!("hardware GPU found: {}", ctx.info()),
                device: Device::Gpu(ctx),
            },
            Err(e) => DeviceChoice {
                device: Device::cpu(),
                reason: format!("{e}; using the CPU backend"),
            },
        }
    }

    /// The device of `kind`. `Gpu` fails with [`crate::KernelError::NoAdapter`] when no adapter
    /// exists; `Auto` never fails (see [`Device::auto`]).
    pub fn of_kind(kind: DeviceKind) -> Result<DeviceChoice> {
        match kind {
            DeviceKind::Cpu => Ok(DeviceChoice {
                device: Device::cpu(),
                reason: "CPU backend requested".into(),
            }),
            DeviceKind::Reference => Ok(DeviceChoice {
                device: Device::Reference,
                reason: "reference kernels requested".into(),
            }),
            DeviceKind::Gpu => {
                let ctx = GpuContext::shared(true)?;
                Ok(DeviceChoice {
                    reason: format!("GPU requested: {}", ctx.info()),
                    device: Device::Gpu(ctx),
                })
            }
            DeviceKind::Auto => Ok(Self::auto()),
        }
    }

    /// The device named by `pref` (`auto`, `cpu`, `gpu` or `reference`, as `--device` takes it);
    /// see [`Device::of_kind`].
    pub fn select(pref: &str) -> Result<DeviceChoice> {
        Self::of_kind(DeviceKind::parse(pref)?)
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceKind;

    #[test]
    fn parses_every_name_and_rejects_others() {
        for (k, n) in DeviceKind::ALL {
            assert_eq!(DeviceKind::parse(n).unwrap(), k);
            assert_eq!(
                DeviceKind::parse(&format!(" {} ", n.to_uppercase())).unwrap(),
                k
            );
            assert_eq!(k.to_string(), n);
        }
        assert_eq!(DeviceKind::parse("").unwrap(), DeviceKind::Auto);
        let e = DeviceKind::parse("tpu").unwrap_err().to_string();
        assert!(e.contains("tpu") && e.contains("reference"), "{e}");
    }
}
