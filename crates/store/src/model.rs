//! Records the store keeps. Each is scoped to an account; the account is part of every
//! lookup key, which is how tenancy is enforced at the lowest layer.

use serde::{Deserialize, Serialize};
use strato_common::{AccountId, ImageId, InstanceId, KeyPairId, ReservationId};

/// A tenant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_ms: i64,
}

/// An access key pair belonging to an account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: AccountId,
    pub created_ms: i64,
}

/// EC2's instance states.
///
/// ```text
///            RunInstances
///                 │
///                 ▼         agent: running
///             pending ─────────────────────▶ running ──Reboot──▶ running
///                 ▲                            │   │
///     StartInstances                  StopInstances  TerminateInstances
///                 │                            ▼   ▼
///             stopped ◀── agent: stopped ── stopping  shutting-down ── agent: gone ──▶ terminated
///                 │                                        ▲
///                 └──────────── TerminateInstances ────────┘
/// ```
///
/// Transitions out of `pending`, `stopping` and `shutting-down` happen only when the
/// host agent reports what the hypervisor did; the API layer never advances state on a
/// timer.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub const ALL: [InstanceState; 6] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::ShuttingDown,
        InstanceState::Terminated,
        InstanceState::Stopping,
        InstanceState::Stopped,
    ];

    /// EC2's numeric state code.
    pub fn code(self) -> u16 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }

    /// EC2's state name.
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }
}

/// What the control plane wants the hypervisor to do with an instance.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Desired {
    Running,
    Stopped,
    Deleted,
}

/// What an instance does when its guest powers off.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownBehavior {
    #[default]
    Stop,
    Terminate,
}

impl ShutdownBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownBehavior::Stop => "stop",
            ShutdownBehavior::Terminate => "terminate",
        }
    }
}

/// EC2's `StateReason`: a code such as `Client.UserInitiatedShutdown` and its message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StateReason {
    pub code: String,
    pub message: String,
}

/// One instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    pub id: InstanceId,
    pub account_id: AccountId,
    pub reservation_id: ReservationId,
    pub image_id: ImageId,
    pub instance_type: String,
    pub key_name: Option<String>,
    pub launch_index: u32,
    pub state: InstanceState,
    pub state_reason: Option<StateReason>,
    pub state_transition_reason: String,
    pub launch_time_ms: i64,
    pub availability_zone: String,
    /// Base64 as given by the client (EC2 returns it the same way).
    pub user_data: Option<String>,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: ShutdownBehavior,
    pub client_token: Option<String>,
    pub architecture: String,
    pub root_device_name: String,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    /// The host agent that runs it.
    pub host: String,
    /// What the hypervisor should do; `generation` increases with every change of the
    /// desired spec so the agent can tell new intent from old.
    pub desired: Desired,
    pub generation: u64,
    /// Bumped by RebootInstances; the agent reboots when it sees a larger value.
    pub reboot_seq: u64,
    /// The pending stop should cut power rather than wait for the guest (`Force`).
    #[serde(default)]
    pub force_stop: bool,
    /// When the instance reached `terminated` (it stays visible for an hour).
    pub terminated_ms: Option<i64>,
}

/// A machine image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Image {
    pub id: ImageId,
    /// `None` for the built-in public images.
    pub owner: Option<AccountId>,
    pub owner_alias: Option<String>,
    pub name: String,
    pub description: String,
    pub architecture: String,
    pub root_device_name: String,
    pub root_device_type: String,
    pub virtualization_type: String,
    pub hypervisor: String,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    pub public: bool,
    pub creation_ms: i64,
    pub platform_details: String,
    pub ena_support: bool,
    pub boot_mode: String,
    /// Size of the root volume in GiB.
    pub root_size_gib: u32,
    /// Where a host finds the image's files and how it boots them.
    #[serde(default)]
    pub boot: ImageBoot,
}

/// The files of an image in a host's image store, and how to boot them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageBoot {
    /// Directory name under the host's image store.
    pub dir: String,
    /// Kernel and initrd for direct kernel boot; `None` boots the disk's bootloader.
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    /// The qcow2 root disk that instance disks overlay.
    pub root_disk: String,
}

/// A key pair. The private key is never stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyPair {
    pub id: KeyPairId,
    pub account_id: AccountId,
    pub name: String,
    pub key_type: String,
    pub fingerprint: String,
    pub public_key: String,
    pub created_ms: i64,
}

/// A tag on any resource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tag {
    pub resource_id: String,
    pub resource_type: String,
    pub key: String,
    pub value: String,
}

/// What a RunInstances `ClientToken` was first used for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientTokenRecord {
    pub token: String,
    pub reservation_id: ReservationId,
    /// A digest of the request parameters, to detect reuse with other parameters.
    pub params_digest: String,
}
