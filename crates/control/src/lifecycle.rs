//! How host agent reports move an instance through EC2's states.
//!
//! This is the only place instance state advances outside an API call, and it is a
//! pure function so every transition is unit-tested. A report for an older spec
//! generation than the instance's is stale and changes nothing: it describes intent
//! that has since been replaced.

use strato_agent_api::{ObservedVmState, StopCause, VmReport};
use strato_common::time_fmt::ec2_reason_time;
use strato_store::{Desired, Instance, InstanceState, ShutdownBehavior, StateReason};

pub fn reason(code: &str, message: &str) -> StateReason {
    StateReason {
        code: code.to_string(),
        message: format!("{code}: {message}"),
    }
}

/// The instance after `report`, or `None` when the report changes nothing.
/// A returned instance with a larger `generation` must be sent to the agent again.
pub fn apply_report(inst: &Instance, report: &VmReport, now_ms: i64) -> Option<Instance> {
    if report.generation != inst.generation {
        return None;
    }
    let mut next = inst.clone();
    use InstanceState as S;
    use ObservedVmState as O;
    match (inst.state, &report.observed) {
        (S::Pending, O::Running) => {
            next.state = S::Running;
            next.state_reason = None;
        }
        (
            S::Pending | S::Running,
            O::Stopped {
                cause: StopCause::GuestShutdown,
            },
        ) if inst.desired == Desired::Running => {
            next.state_reason = Some(reason(
                "Client.InstanceInitiatedShutdown",
                "Instance initiated shutdown",
            ));
            next.state_transition_reason =
                format!("Instance initiated shutdown ({})", ec2_reason_time(now_ms));
            next.generation += 1;
            match inst.shutdown_behavior {
                ShutdownBehavior::Stop => {
                    next.state = S::Stopped;
                    next.desired = Desired::Stopped;
                }
                ShutdownBehavior::Terminate => {
                    next.state = S::ShuttingDown;
                    next.desired = Desired::Deleted;
                }
            }
        }
        (
            S::Pending | S::Running,
            O::Stopped {
                cause: StopCause::Crashed,
            },
        ) if inst.desired == Desired::Running => {
            next.state = S::Stopped;
            next.desired = Desired::Stopped;
            next.generation += 1;
            // The agent's detail may name host paths: it is logged, never shown.
            next.state_reason = Some(reason(
                "Server.InternalError",
                "The instance's virtual machine stopped unexpectedly",
            ));
            next.state_transition_reason = format!("Server error ({})", ec2_reason_time(now_ms));
        }
        (S::Stopping, O::Stopped { .. }) => {
            next.state = S::Stopped;
        }
        (S::ShuttingDown, O::Deleted) => {
            next.state = S::Terminated;
            next.terminated_ms = Some(now_ms);
        }
        _ => return None,
    }
    (next != *inst).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::{AccountId, ImageId, InstanceId, ReservationId, ResourceId};

    fn inst(state: InstanceState, desired: Desired) -> Instance {
        Instance {
            id: InstanceId::generate(),
            account_id: AccountId::generate(),
            reservation_id: ReservationId::generate(),
            image_id: ImageId::generate(),
            instance_type: "t3.micro".into(),
            key_name: None,
            launch_index: 0,
            state,
            state_reason: None,
            state_transition_reason: String::new(),
            launch_time_ms: 0,
            availability_zone: "us-east-1a".into(),
            user_data: None,
            disable_api_termination: false,
            disable_api_stop: false,
            shutdown_behavior: ShutdownBehavior::Stop,
            client_token: None,
            architecture: "x86_64".into(),
            root_device_name: "/dev/xvda".into(),
            kernel_id: None,
            ramdisk_id: None,
            host: "h".into(),
            desired,
            generation: 3,
            reboot_seq: 0,
            force_stop: false,
            metadata_options: Default::default(),
            terminated_ms: None,
            vpc_id: None,
            subnet_id: None,
            security_groups: vec![],
            private_ip: None,
            public_ip: None,
            auto_public_ip: false,
            cpu_credits: None,
            monitoring: false,
            ebs_optimized: false,
            cpu_options: None,
            auto_recovery: "default".into(),
            volume_tags: vec![],
            root_volume: false,
            rev: Default::default(),
        }
    }

    fn report(i: &Instance, gen: u64, observed: ObservedVmState) -> VmReport {
        VmReport {
            instance_id: i.id.clone(),
            generation: gen,
            observed,
            detail: None,
            disks: vec![],
        }
    }

    #[test]
    fn normal_transitions() {
        let i = inst(InstanceState::Pending, Desired::Running);
        let n = apply_report(&i, &report(&i, 3, ObservedVmState::Running), 5).unwrap();
        assert_eq!(n.state, InstanceState::Running);

        let i = inst(InstanceState::Stopping, Desired::Stopped);
        let stopped = ObservedVmState::Stopped {
            cause: StopCause::Requested,
        };
        assert_eq!(
            apply_report(&i, &report(&i, 3, stopped), 5).unwrap().state,
            InstanceState::Stopped
        );

        let i = inst(InstanceState::ShuttingDown, Desired::Deleted);
        let n = apply_report(&i, &report(&i, 3, ObservedVmState::Deleted), 5).unwrap();
        assert_eq!(
            (n.state, n.terminated_ms),
            (InstanceState::Terminated, Some(5))
        );
    }

    #[test]
    fn stale_and_irrelevant_reports_change_nothing() {
        let i = inst(InstanceState::Stopping, Desired::Stopped);
        assert!(apply_report(&i, &report(&i, 2, ObservedVmState::Running), 5).is_none());
        assert!(apply_report(&i, &report(&i, 3, ObservedVmState::Running), 5).is_none());
        let i = inst(InstanceState::Running, Desired::Running);
        assert!(apply_report(&i, &report(&i, 3, ObservedVmState::Starting), 5).is_none());
        assert!(apply_report(&i, &report(&i, 3, ObservedVmState::Running), 5).is_none());
    }

    #[test]
    fn guest_shutdown_follows_the_behaviour() {
        let off = ObservedVmState::Stopped {
            cause: StopCause::GuestShutdown,
        };
        let i = inst(InstanceState::Running, Desired::Running);
        let n = apply_report(&i, &report(&i, 3, off.clone()), 5).unwrap();
        assert_eq!(
            (n.state, n.desired, n.generation),
            (InstanceState::Stopped, Desired::Stopped, 4)
        );
        assert_eq!(
            n.state_reason.unwrap().code,
            "Client.InstanceInitiatedShutdown"
        );

        let mut i = inst(InstanceState::Running, Desired::Running);
        i.shutdown_behavior = ShutdownBehavior::Terminate;
        let n = apply_report(&i, &report(&i, 3, off), 5).unwrap();
        assert_eq!(
            (n.state, n.desired),
            (InstanceState::ShuttingDown, Desired::Deleted)
        );
    }

    #[test]
    fn crash_leaves_the_instance_stopped_with_a_reason() {
        let i = inst(InstanceState::Running, Desired::Running);
        let n = apply_report(
            &i,
            &report(
                &i,
                3,
                ObservedVmState::Stopped {
                    cause: StopCause::Crashed,
                },
            ),
            5,
        )
        .unwrap();
        assert_eq!(n.state, InstanceState::Stopped);
        assert_eq!(n.state_reason.unwrap().code, "Server.InternalError");
    }
}
