//! The control plane with a real store and the simulated host agent, stepped by hand so
//! every transition is deterministic.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;
use strato_agent::Agent;
use strato_agent_api::{AgentClient, VmReport};
use strato_common::filter::FilterSet;
use strato_common::{Error, InstanceId, ResourceId, ResourceKind};
use strato_control::instances::RunInstancesInput;
use strato_control::page::PageRequest;
use strato_control::{accounts, Caller, ControlConfig, ControlPlane};
use strato_drivers::sim::{SimConfig, SimDriver};
use strato_drivers::Hypervisor;
use strato_store::{Db, InstanceState};
use tokio::sync::mpsc::UnboundedReceiver;

/// Ids as CreateTags takes them: strings, since one call may name resources of any kind.
fn names<T: ResourceId>(ids: &[T]) -> Vec<String> {
    ids.iter().map(|i| i.to_string()).collect()
}

const IMAGE: &str = strato_control::images::DEFAULT_IMAGE_ID;

struct World {
    _dir: tempfile::TempDir,
    cp: ControlPlane,
    agent: Arc<Agent>,
    driver: Arc<SimDriver>,
    reports: UnboundedReceiver<VmReport>,
    a: Caller,
    b: Caller,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("db")).unwrap());
    let driver = Arc::new(
        SimDriver::open(
            &dir.path().join("sim"),
            SimConfig {
                boot_delay: Duration::ZERO,
                stop_delay: Duration::ZERO,
            },
        )
        .unwrap(),
    );
    let (agent, reports) = Agent::new("local", driver.clone() as Arc<dyn Hypervisor>);
    let cp = ControlPlane::new(
        db.clone(),
        agent.clone() as Arc<dyn AgentClient>,
        ControlConfig::new("us-east-1", "http://127.0.0.1:1"),
    );
    cp.register_builtin_images(None).unwrap();
    cp.sync_agent().unwrap();
    let caller = |name: &str| {
        let (acct, key) = accounts::create_account(&db, name, None).unwrap();
        Caller {
            account: acct.id,
            access_key_id: key.access_key_id,
            region: "us-east-1".into(),
        }
    };
    let a = caller("a");
    let b = caller("b");
    World {
        _dir: dir,
        cp,
        agent,
        driver,
        reports,
        a,
        b,
    }
}

impl World {
    /// Runs agent passes and applies their reports until nothing changes.
    fn settle(&mut self) {
        for _ in 0..10 {
            self.agent.reconcile_all();
            let mut any = false;
            while let Ok(r) = self.reports.try_recv() {
                self.cp.handle_report(&r).unwrap();
                any = true;
            }
            if !any {
                return;
            }
        }
    }

    fn run(&self, caller: &Caller, n: i64) -> Vec<InstanceId> {
        let input = RunInstancesInput {
            image_id: Some(IMAGE.into()),
            min_count: Some(n),
            max_count: Some(n),
            ..Default::default()
        };
        self.cp
            .run_instances(caller, &input, false)
            .unwrap()
            .instances
            .into_iter()
            .map(|(i, _)| i.id.clone())
            .collect()
    }

    fn state(&self, caller: &Caller, id: &InstanceId) -> InstanceState {
        self.cp.instance(caller, id).unwrap().state
    }
}

#[test]
fn full_lifecycle_follows_agent_reports() {
    let mut w = world();
    let ids = w.run(&w.a.clone(), 2);
    assert_eq!(w.state(&w.a, &ids[0]), InstanceState::Pending);
    w.settle();
    assert_eq!(w.state(&w.a, &ids[0]), InstanceState::Running);

    let a = w.a.clone();
    let ch = w.cp.stop_instances(&a, &ids[..1], false, false).unwrap();
    assert_eq!(
        (ch[0].previous, ch[0].current),
        (InstanceState::Running, InstanceState::Stopping)
    );
    w.settle();
    assert_eq!(w.state(&a, &ids[0]), InstanceState::Stopped);
    let i = w.cp.instance(&a, &ids[0]).unwrap();
    assert_eq!(i.state_reason.unwrap().code, "Client.UserInitiatedShutdown");
    assert!(i.state_transition_reason.starts_with("User initiated ("));

    // Illegal transitions are refused and change nothing.
    assert!(matches!(
        w.cp.reboot_instances(&a, &ids[..1], false),
        Err(Error::IncorrectInstanceState(_))
    ));
    w.cp.start_instances(&a, &ids[..1], false).unwrap();
    assert_eq!(w.state(&a, &ids[0]), InstanceState::Pending);
    w.settle();
    assert_eq!(w.state(&a, &ids[0]), InstanceState::Running);

    w.cp.terminate_instances(&a, &ids, false).unwrap();
    assert_eq!(w.state(&a, &ids[1]), InstanceState::ShuttingDown);
    w.settle();
    assert_eq!(w.state(&a, &ids[1]), InstanceState::Terminated);
    assert!(w.driver.list().is_empty(), "terminate removes the VMs");
    assert!(matches!(
        w.cp.start_instances(&a, &ids[..1], false),
        Err(Error::IncorrectInstanceState(_))
    ));
}

#[test]
fn dry_run_and_failures_change_nothing() {
    let mut w = world();
    let a = w.a.clone();
    let ids = w.run(&a, 1);
    w.settle();
    assert!(matches!(
        w.cp.stop_instances(&a, &ids, false, true),
        Err(Error::DryRunOperation)
    ));
    assert_eq!(w.state(&a, &ids[0]), InstanceState::Running);
    // One bad id in the list refuses the whole call.
    let mixed = vec![
        ids[0].clone(),
        InstanceId::parse("i-0000000000000000f").unwrap(),
    ];
    assert!(matches!(
        w.cp.stop_instances(&a, &mixed, false, false),
        Err(Error::NotFound {
            kind: ResourceKind::Instance,
            ..
        })
    ));
    assert_eq!(w.state(&a, &ids[0]), InstanceState::Running);
    let input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(1),
        max_count: Some(1),
        ..Default::default()
    };
    assert!(matches!(
        w.cp.run_instances(&a, &input, true),
        Err(Error::DryRunOperation)
    ));
    let (all, _) =
        w.cp.describe_instances(&a, &[], &FilterSet::default(), &PageRequest::all())
            .unwrap();
    assert_eq!(all.len(), 1);
}

#[test]
fn client_token_makes_run_instances_idempotent() {
    let w = world();
    let a = w.a.clone();
    let mut input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(2),
        max_count: Some(2),
        client_token: Some("token-1".into()),
        ..Default::default()
    };
    let first = w.cp.run_instances(&a, &input, false).unwrap();
    let again = w.cp.run_instances(&a, &input, false).unwrap();
    assert_eq!(first.reservation_id, again.reservation_id);
    let ids = |r: &strato_control::instances::Reservation| {
        r.instances
            .iter()
            .map(|(i, _)| i.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&again));
    let (all, _) =
        w.cp.describe_instances(&a, &[], &FilterSet::default(), &PageRequest::all())
            .unwrap();
    assert_eq!(all.len(), 2, "the retry launched nothing");

    input.instance_type = Some("m5.large".into());
    assert!(matches!(
        w.cp.run_instances(&a, &input, false),
        Err(Error::IdempotentParameterMismatch(_))
    ));
    // Tokens are per account.
    let b = w.b.clone();
    input.instance_type = None;
    let theirs = w.cp.run_instances(&b, &input, false).unwrap();
    assert_ne!(theirs.reservation_id, first.reservation_id);
}

#[test]
fn guest_shutdown_and_crash() {
    let mut w = world();
    let a = w.a.clone();
    use base64::Engine;
    let script = base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\npoweroff\n");
    let mut input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(1),
        max_count: Some(1),
        user_data: Some(script),
        ..Default::default()
    };
    let stop_id = w.cp.run_instances(&a, &input, false).unwrap().instances[0]
        .0
        .id
        .clone();
    input.shutdown_behavior = Some("terminate".into());
    let term_id = w.cp.run_instances(&a, &input, false).unwrap().instances[0]
        .0
        .id
        .clone();
    w.settle();
    w.settle();
    let stopped = w.cp.instance(&a, &stop_id).unwrap();
    assert_eq!(stopped.state, InstanceState::Stopped);
    assert_eq!(
        stopped.state_reason.unwrap().code,
        "Client.InstanceInitiatedShutdown"
    );
    assert_eq!(w.state(&a, &term_id), InstanceState::Terminated);
}

#[test]
fn tenants_are_isolated() {
    let mut w = world();
    let (a, b) = (w.a.clone(), w.b.clone());
    let ids = w.run(&a, 1);
    w.settle();
    let (theirs, _) =
        w.cp.describe_instances(&b, &[], &FilterSet::default(), &PageRequest::all())
            .unwrap();
    assert!(theirs.is_empty());
    for result in [
        w.cp.stop_instances(&b, &ids, false, false).map(|_| ()),
        w.cp.start_instances(&b, &ids, false).map(|_| ()),
        w.cp.terminate_instances(&b, &ids, false).map(|_| ()),
        w.cp.reboot_instances(&b, &ids, false),
        w.cp.instance(&b, &ids[0]).map(|_| ()),
        w.cp.console_output(&b, &ids[0]).map(|_| ()),
        w.cp.create_tags(&b, &names(&ids), &[("k".into(), "v".into())], false),
    ] {
        assert!(
            matches!(
                result,
                Err(Error::NotFound {
                    kind: ResourceKind::Instance,
                    ..
                })
            ),
            "{result:?}"
        );
    }
    assert_eq!(w.state(&a, &ids[0]), InstanceState::Running);
}

#[test]
fn restart_resyncs_the_agent_and_removes_orphans() {
    let mut w = world();
    let a = w.a.clone();
    let ids = w.run(&a, 1);
    w.settle();
    // A VM the store never heard of (a launch that did not commit) is an orphan.
    let orphan = strato_agent_api::VmSpec {
        instance_id: <strato_common::InstanceId as strato_common::ResourceId>::generate(),
        ..w.cp.spec_of(&w.cp.instance(&a, &ids[0]).unwrap())
    };
    w.driver.start(&orphan).unwrap();
    assert_eq!(w.driver.list().len(), 2);
    // A new agent on the same hypervisor, as after a restart.
    let (agent2, reports2) = Agent::new("local", w.driver.clone() as Arc<dyn Hypervisor>);
    w.cp = ControlPlane::new(
        w.cp.db.clone(),
        agent2.clone() as Arc<dyn AgentClient>,
        w.cp.cfg.clone(),
    );
    w.agent = agent2;
    w.reports = reports2;
    w.cp.sync_agent().unwrap();
    w.settle();
    assert_eq!(w.driver.list().len(), 1, "the orphan is gone");
    assert_eq!(w.state(&a, &ids[0]), InstanceState::Running);
}

#[test]
fn filters_and_pages() {
    let mut w = world();
    let a = w.a.clone();
    let ids = w.run(&a, 12);
    w.settle();
    w.cp.create_tags(
        &a,
        &names(&ids[..3]),
        &[("Env".into(), "prod".into())],
        false,
    )
    .unwrap();
    let filters = FilterSet::of(&[("tag:Env", "pr*")]);
    let (found, _) =
        w.cp.describe_instances(&a, &[], &filters, &PageRequest::all())
            .unwrap();
    assert_eq!(found.len(), 3);
    let mut seen = vec![];
    let mut page = PageRequest::new(Some(5), None, 5, 1000).unwrap();
    loop {
        let (got, next) =
            w.cp.describe_instances(&a, &[], &FilterSet::default(), &page)
                .unwrap();
        seen.extend(got.into_iter().map(|(i, _)| i.id.clone()));
        match next {
            Some(t) => page = PageRequest::new(Some(5), Some(&t), 5, 1000).unwrap(),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
}
