//! The store on a real SQLite file: scoping, transactions, persistence.

use strato_common::{AccountId, Error, ImageId, InstanceId, ReservationId, ResourceId};
use strato_store::*;

fn instance(account: &AccountId) -> Instance {
    Instance {
        id: InstanceId::generate(),
        account_id: account.clone(),
        reservation_id: ReservationId::generate(),
        image_id: ImageId::generate(),
        instance_type: "t3.micro".into(),
        key_name: None,
        launch_index: 0,
        state: InstanceState::Pending,
        state_reason: None,
        state_transition_reason: String::new(),
        launch_time_ms: 1,
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
        host: "local".into(),
        desired: Desired::Running,
        generation: 1,
        reboot_seq: 0,
        force_stop: false,
        terminated_ms: None,
    }
}

fn account(db: &Db, name: &str) -> AccountId {
    let a = Account {
        id: AccountId::generate(),
        name: name.into(),
        created_ms: 0,
    };
    db.write(|tx| tx.insert_account(&a)).unwrap();
    a.id
}

#[test]
fn rows_are_scoped_to_their_account() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let (a, b) = (account(&db, "a"), account(&db, "b"));
    let i = instance(&a);
    db.write(|tx| tx.insert_instance(&i)).unwrap();
    db.read(|tx| {
        assert!(tx.instance(&a, i.id.as_str())?.is_some());
        assert!(tx.instance(&b, i.id.as_str())?.is_none());
        assert_eq!(tx.instances_page(&b, None, 100, 0)?.len(), 0);
        assert_eq!(tx.instances_page(&a, None, 100, 0)?.len(), 1);
        Ok(())
    })
    .unwrap();
    let tag = Tag {
        resource_id: i.id.to_string(),
        resource_type: "instance".into(),
        key: "k".into(),
        value: "v".into(),
    };
    db.write(|tx| tx.put_tag(&a, &tag)).unwrap();
    assert!(db
        .read(|tx| tx.tags_of(&b, i.id.as_str()))
        .unwrap()
        .is_empty());
    assert_eq!(
        db.read(|tx| tx.tags_of(&a, i.id.as_str())).unwrap().len(),
        1
    );
}

#[test]
fn a_failed_transaction_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let a = account(&db, "a");
    let i = instance(&a);
    let r: Result<(), Error> = db.write(|tx| {
        tx.insert_instance(&i)?;
        Err(Error::invalid_value("refused after the insert"))
    });
    assert!(r.is_err());
    assert!(db
        .read(|tx| tx.instance(&a, i.id.as_str()))
        .unwrap()
        .is_none());
}

#[test]
fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (a, i) = {
        let db = Db::open(&path).unwrap();
        let a = account(&db, "a");
        let mut i = instance(&a);
        db.write(|tx| tx.insert_instance(&i)).unwrap();
        i.state = InstanceState::Running;
        db.write(|tx| tx.update_instance(&i)).unwrap();
        (a, i)
    };
    let db = Db::open(&path).unwrap();
    let back = db
        .read(|tx| tx.instance(&a, i.id.as_str()))
        .unwrap()
        .unwrap();
    assert_eq!(back, i);
    assert_eq!(db.read(|tx| tx.list_accounts()).unwrap().len(), 1);
}

#[test]
fn key_pair_names_are_unique_per_account_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let (a, b) = (account(&db, "a"), account(&db, "b"));
    let kp = |acct: &AccountId| KeyPair {
        id: strato_common::KeyPairId::generate(),
        account_id: acct.clone(),
        name: "deploy".into(),
        key_type: "rsa".into(),
        fingerprint: "f".into(),
        public_key: "ssh-rsa AAAA".into(),
        created_ms: 0,
    };
    db.write(|tx| tx.insert_key_pair(&kp(&a))).unwrap();
    assert!(matches!(
        db.write(|tx| tx.insert_key_pair(&kp(&a))),
        Err(Error::KeyPairDuplicate(_))
    ));
    db.write(|tx| tx.insert_key_pair(&kp(&b))).unwrap();
}

#[test]
fn terminated_instances_disappear_after_their_window() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let a = account(&db, "a");
    let mut i = instance(&a);
    i.state = InstanceState::Terminated;
    i.terminated_ms = Some(1_000);
    db.write(|tx| tx.insert_instance(&i)).unwrap();
    assert_eq!(
        db.read(|tx| tx.instances_page(&a, None, 10, 500))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        db.read(|tx| tx.instances_page(&a, None, 10, 2_000))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(db.write(|tx| tx.purge_terminated(2_000)).unwrap(), 1);
    assert!(db
        .read(|tx| tx.instance(&a, i.id.as_str()))
        .unwrap()
        .is_none());
}
