//! `RUN --security=insecure` (allowed with `pallet build --allow security.insecure`): the
//! step's spec loosened as BuildKit's `WithInsecureSpec` does (util/entitlements/security):
//! every capability pallet has, in all five sets, no masked or read-only paths, no seccomp filter, every
//! device allowed by the device cgroup, a writable /sys and /sys/fs/cgroup, and the devices
//! tools that need privileges use (fuse, tun, loop, kmsg). The namespaces stay: it is still a
//! container, only an unconfined one.

use oci_spec::runtime::{
    Capability, LinuxCapabilitiesBuilder, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, Spec,
};
use std::collections::HashSet;

/// Every capability Linux 6.x has, by bit number (linux/capability.h).
const BY_BIT: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The capabilities pallet itself may hand on: its bounding set (BuildKit's `cap.Current()`).
/// Where pallet runs with fewer than all (in a container), asking runc for more fails with
/// "unable to apply caps".
fn current_capabilities() -> HashSet<Capability> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0);
    BY_BIT
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, cap)| *cap)
        .collect()
}

/// Character devices BuildKit adds in insecure mode: (path, major, minor).
const DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/kmsg", 1, 11),
    ("/dev/cuse", 10, 203),
    ("/dev/fuse", 10, 229),
    ("/dev/kvm", 10, 232),
    ("/dev/net/tun", 10, 200),
    ("/dev/loop-control", 10, 237),
];

/// Loop block devices made for the step (BuildKit makes up to the first free one plus 7).
const LOOP_DEVICES: i64 = 8;

/// Loosens `spec` for an insecure step.
pub fn apply(spec: &mut Spec) {
    let all = current_capabilities();
    if let Some(process) = spec.process_mut() {
        let caps = LinuxCapabilitiesBuilder::default()
            .bounding(all.clone())
            .permitted(all.clone())
            .effective(all.clone())
            .inheritable(all.clone())
            .ambient(all)
            .build()
            .expect("capability sets with every field set");
        process.set_capabilities(Some(caps));
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            let writable = matches!(
                m.destination().to_str(),
                Some("/sys") | Some("/sys/fs/cgroup")
            );
            if writable {
                if let Some(options) = m.options_mut() {
                    options.retain(|o| o != "ro");
                    options.push("rw".into());
                }
            }
        }
    }
    if let Some(linux) = spec.linux_mut() {
        linux.set_masked_paths(Some(Vec::new()));
        linux.set_readonly_paths(Some(Vec::new()));
        linux.set_seccomp(None);
        if let Some(resources) = linux.resources_mut() {
            let allow = |typ| {
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(typ)
                    .access("rwm")
                    .build()
                    .expect("a device rule with every field set")
            };
            resources.set_devices(Some(vec![
                allow(LinuxDeviceType::C),
                allow(LinuxDeviceType::B),
            ]));
        }
        let mut devices = linux.devices().clone().unwrap_or_default();
        let device = |path: String, typ, major, minor| {
            LinuxDeviceBuilder::default()
                .path(path)
                .typ(typ)
                .major(major)
                .minor(minor)
                .build()
                .expect("a device with every field set")
        };
        for (path, major, minor) in DEVICES {
            devices.push(device(path.into(), LinuxDeviceType::C, major, minor));
        }
        for i in 0..LOOP_DEVICES {
            devices.push(device(format!("/dev/loop{i}"), LinuxDeviceType::B, 7, i));
        }
        linux.set_devices(Some(devices));
    }
}
