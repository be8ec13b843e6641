//! Where the system monitor's readings come from: the [`HostSampler`] trait, its sysinfo
//! implementation, and what one sample holds.
//!
//! sysinfo's full refresh (every process, every disk, every network) costs milliseconds;
//! the robot's idle budget is under 1 % of a core. So [`SysinfoSampler`] refreshes only
//! what it reads: the CPU counters (`/proc/stat`), RAM (`/proc/meminfo`), the
//! temperature sensors found at start (one sysfs file each), and the one filesystem it
//! watches (one `statvfs`). Lists (sensors, mounts) are read once, at start.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sysinfo::{
    Components, CpuRefreshKind, Disk, DiskRefreshKind, Disks, MemoryRefreshKind, System,
    MINIMUM_CPU_UPDATE_INTERVAL,
};

use crate::core::levels::HostResource;

/// RAM in use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemoryUsage {
    /// Bytes in use: total − available (what the kernel could not hand out now).
    pub used_bytes: u64,
    /// Bytes of RAM.
    pub total_bytes: u64,
}

/// One temperature sensor's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Temperature {
    /// The sensor's label, e.g. `cpu_thermal temp1` on a Raspberry Pi.
    pub sensor: String,
    /// Degrees Celsius.
    pub celsius: f64,
}

/// The watched filesystem's fill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskUsage {
    /// Its mount point.
    pub mount: String,
    /// Bytes of the filesystem.
    pub total_bytes: u64,
    /// Bytes an unprivileged writer can still use.
    pub available_bytes: u64,
}

impl DiskUsage {
    /// The used share as a writer sees it: `1 − available / total` (blocks reserved for
    /// root count as used: the robot does not run as root). 0 for an empty filesystem.
    pub fn used_ratio(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        1.0 - self.available_bytes as f64 / self.total_bytes as f64
    }
}

/// What one look at the host found; a part the platform does not expose is `None` or
/// empty, never made up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostSample {
    /// Share of all CPUs busy since the previous sample, 0–1; `None` on the first sample
    /// and when the samples are too close together to tell.
    pub cpu_ratio: Option<f64>,
    /// RAM in use.
    pub memory: Option<MemoryUsage>,
    /// Every temperature sensor that gave a reading.
    pub temperatures: Vec<Temperature>,
    /// The watched filesystem.
    pub disk: Option<DiskUsage>,
}

impl HostSample {
    /// The reading of `resource` that thresholds apply to: CPU, memory and disk as used
    /// shares 0–1, temperature as the hottest sensor's °C.
    pub fn reading(&self, resource: HostResource) -> Option<f64> {
        match resource {
            HostResource::Cpu => self.cpu_ratio,
            HostResource::Memory => self
                .memory
                .filter(|m| m.total_bytes > 0)
                .map(|m| m.used_bytes as f64 / m.total_bytes as f64),
            HostResource::Temperature => {
                self.temperatures.iter().map(|t| t.celsius).reduce(f64::max)
            }
            HostResource::Disk => self.disk.as_ref().map(DiskUsage::used_ratio),
        }
    }
}

/// A source of host samples; the system monitor takes one per period.
///
/// The real one is [`SysinfoSampler`]; tests script their own.
pub trait HostSampler: Send + 'static {
    /// Looks at the host now.
    fn sample(&mut self) -> HostSample;
}

/// Samples the host with sysinfo, refreshing only what it reads.
pub struct SysinfoSampler {
    system: System,
    /// When the CPU counters were last read (real time: CPU shares are real-time ratios).
    cpu_read: Instant,
    components: Components,
    disk: Option<Disk>,
}

impl SysinfoSampler {
    /// A sampler watching the filesystem that holds `disk_path` (the mount point that is
    /// its longest prefix; the path need not exist yet). Takes the first CPU reading, the
    /// baseline of the next sample's share.
    pub fn new(disk_path: &Path) -> Self {
        let mut system = System::new();
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        let components = Components::new_with_refreshed_list();
        let disk = watched_disk(disk_path);
        let sensors: Vec<_> = components.iter().map(|c| c.label().to_string()).collect();
        tracing::info!(
            ?sensors,
            disk = ?disk.as_ref().map(Disk::mount_point),
            path = %disk_path.display(),
            "host sampler ready"
        );
        Self {
            system,
            cpu_read: Instant::now(),
            components,
            disk,
        }
    }
}

/// The disk whose mount point is the longest prefix of `path`, resolved through symlinks
/// as far as it exists.
fn watched_disk(path: &Path) -> Option<Disk> {
    let resolved = path
        .ancestors()
        .find_map(|a| {
            let rest = path.strip_prefix(a).ok()?;
            a.canonicalize().ok().map(|c| c.join(rest))
        })
        .unwrap_or_else(|| PathBuf::from(path));
    let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
    Vec::<Disk>::from(disks)
        .into_iter()
        .filter(|d| resolved.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
}

impl HostSampler for SysinfoSampler {
    fn sample(&mut self) -> HostSample {
        // Counters read closer together than sysinfo's minimum are mostly rounding; keep
        // the older baseline and report nothing this time.
        let cpu_ratio = (self.cpu_read.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL).then(|| {
            self.system
                .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
            self.cpu_read = Instant::now();
            f64::from(self.system.global_cpu_usage() / 100.0).clamp(0.0, 1.0)
        });
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let total_bytes = self.system.total_memory();
        let memory = (total_bytes > 0).then(|| MemoryUsage {
            used_bytes: self.system.used_memory(),
            total_bytes,
        });
        let temperatures = self
            .components
            .iter_mut()
            .filter_map(|c| {
                c.refresh();
                let celsius = f64::from(c.temperature()?);
                celsius.is_finite().then(|| Temperature {
                    sensor: c.label().to_string(),
                    celsius,
                })
            })
            .collect();
        let disk = self.disk.as_mut().and_then(|d| {
            d.refresh_specifics(DiskRefreshKind::nothing().with_storage())
                .then(|| DiskUsage {
                    mount: d.mount_point().display().to_string(),
                    total_bytes: d.total_space(),
                    available_bytes: d.available_space(),
                })
        });
        HostSample {
            cpu_ratio,
            memory,
            temperatures,
            disk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_shares_and_the_hottest_sensor() {
        let s = HostSample {
            cpu_ratio: Some(0.5),
            memory: Some(MemoryUsage {
                used_bytes: 1,
                total_bytes: 4,
            }),
            temperatures: vec![
                Temperature {
                    sensor: "a".into(),
                    celsius: 50.0,
                },
                Temperature {
                    sensor: "b".into(),
                    celsius: 61.5,
                },
            ],
            disk: Some(DiskUsage {
                mount: "/".into(),
                total_bytes: 100,
                available_bytes: 10,
            }),
        };
        assert_eq!(s.reading(HostResource::Cpu), Some(0.5));
        assert_eq!(s.reading(HostResource::Memory), Some(0.25));
        assert_eq!(s.reading(HostResource::Temperature), Some(61.5));
        assert_eq!(s.reading(HostResource::Disk), Some(0.9));
        let empty = HostSample::default();
        for r in HostResource::ALL {
            assert_eq!(empty.reading(r), None, "{r:?}");
        }
    }

    /// The real sampler on this machine: memory and the root filesystem are always
    /// there; CPU only once enough time has passed; temperatures only where exposed.
    #[test]
    fn sysinfo_sampler_reads_this_host() {
        let mut sampler = SysinfoSampler::new(Path::new("/"));
        let s = sampler.sample();
        assert_eq!(s.cpu_ratio, None, "too soon after the baseline");
        let m = s.memory.unwrap();
        assert!(m.used_bytes <= m.total_bytes && m.total_bytes > 0, "{m:?}");
        let d = s.disk.unwrap();
        assert_eq!(d.mount, "/");
        assert!((0.0..=1.0).contains(&d.used_ratio()), "{d:?}");
        for t in &s.temperatures {
            assert!(t.celsius.is_finite(), "{t:?}");
        }
        let deeper = SysinfoSampler::new(Path::new("/nonexistent/dir/file"));
        assert!(
            deeper.disk.is_some(),
            "a path that does not exist yet falls under /"
        );
    }
}
