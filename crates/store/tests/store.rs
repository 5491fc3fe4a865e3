//! The store on a real SQLite file: scoping, transactions, persistence.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

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

/// The account's scope in us-east-1, where these tests keep their rows.
fn us(a: &AccountId) -> Scope {
    Scope::new(a.clone(), "us-east-1")
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
        assert!(tx.instance(&us(&a), i.id.as_str())?.is_some());
        assert!(tx.instance(&us(&b), i.id.as_str())?.is_none());
        assert_eq!(tx.instances_page(&us(&b), None, 100, 0)?.len(), 0);
        assert_eq!(tx.instances_page(&us(&a), None, 100, 0)?.len(), 1);
        Ok(())
    })
    .unwrap();
    let tag = Tag {
        resource_id: i.id.to_string(),
        resource_type: "instance".into(),
        key: "k".into(),
        value: "v".into(),
    };
    db.write(|tx| tx.put_tag(&us(&a), &tag)).unwrap();
    assert!(db
        .read(|tx| tx.tags_of(&us(&b), i.id.as_str()))
        .unwrap()
        .is_empty());
    assert_eq!(
        db.read(|tx| tx.tags_of(&us(&a), i.id.as_str()))
            .unwrap()
            .len(),
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
        .read(|tx| tx.instance(&us(&a), i.id.as_str()))
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
        .read(|tx| tx.instance(&us(&a), i.id.as_str()))
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
        region: "us-east-1".into(),
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
        db.read(|tx| tx.instances_page(&us(&a), None, 10, 500))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        db.read(|tx| tx.instances_page(&us(&a), None, 10, 2_000))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(db.write(|tx| tx.purge_terminated(2_000)).unwrap(), 1);
    assert!(db
        .read(|tx| tx.instance(&us(&a), i.id.as_str()))
        .unwrap()
        .is_none());
}

fn vpc(account: &AccountId, default: bool) -> Vpc {
    Vpc {
        id: strato_common::VpcId::generate(),
        account_id: account.clone(),
        region: "us-east-1".into(),
        cidr_block: "10.0.0.0/16".into(),
        cidr_association_id: strato_common::generate_with_prefix("vpc-cidr-assoc"),
        is_default: default,
        dhcp_options_id: None,
        instance_tenancy: "default".into(),
        enable_dns_support: true,
        enable_dns_hostnames: false,
        created_ms: 0,
    }
}

#[test]
fn network_documents_are_scoped_and_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let (a, b) = (account(&db, "a"), account(&db, "b"));
    let mut v = vpc(&a, false);
    let d = vpc(&a, true);
    db.write(|tx| {
        tx.insert_doc(&v)?;
        tx.insert_doc(&d)?;
        tx.put_tag(
            &us(&a),
            &Tag {
                resource_id: v.id.to_string(),
                resource_type: "vpc".into(),
                key: "Name".into(),
                value: "x".into(),
            },
        )
    })
    .unwrap();
    db.read(|tx| {
        assert_eq!(tx.get_doc::<Vpc>(&us(&a), v.id.as_str())?, Some(v.clone()));
        assert_eq!(tx.get_doc::<Vpc>(&us(&b), v.id.as_str())?, None);
        assert_eq!(tx.list_docs::<Vpc>(&us(&a))?.len(), 2);
        assert!(tx.list_docs::<Vpc>(&us(&b))?.is_empty());
        let defaults: Vec<Vpc> = tx.list_docs_by(&us(&a), "is_default", "true")?;
        assert_eq!(defaults, vec![d.clone()]);
        // Only indexed columns may be queried.
        assert!(tx.list_docs_by::<Vpc>(&us(&a), "cidr_block", "x").is_err());
        Ok(())
    })
    .unwrap();
    v.enable_dns_hostnames = true;
    v.is_default = true;
    db.write(|tx| tx.update_doc(&v)).unwrap();
    let defaults: Vec<Vpc> = db
        .read(|tx| tx.list_docs_by(&us(&a), "is_default", "true"))
        .unwrap();
    assert_eq!(defaults.len(), 2, "the indexed column follows the record");
    // Another account cannot update or delete the record.
    let mut stolen = v.clone();
    stolen.account_id = b.clone();
    assert!(db.write(|tx| tx.update_doc(&stolen)).is_err());
    assert!(!db
        .write(|tx| tx.delete_doc::<Vpc>(&us(&b), v.id.as_str()))
        .unwrap());
    assert!(db
        .write(|tx| tx.delete_doc::<Vpc>(&us(&a), v.id.as_str()))
        .unwrap());
    assert!(db
        .read(|tx| tx.tags_of(&us(&a), v.id.as_str()))
        .unwrap()
        .is_empty());
}

#[test]
fn addresses_and_group_memberships() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let (a, b) = (account(&db, "a"), account(&db, "b"));
    let subnet = strato_common::SubnetId::generate();
    let group = strato_common::SecurityGroupId::generate();
    let mut i = instance(&a);
    i.subnet_id = Some(subnet.clone());
    db.write(|tx| {
        tx.insert_instance(&i)?;
        tx.set_instance_groups(&us(&a), i.id.as_str(), &[group.as_str()])?;
        tx.take_subnet_address(&us(&a), subnet.as_str(), 5, i.id.as_str())?;
        tx.take_subnet_address(&us(&a), subnet.as_str(), 4, i.id.as_str())
    })
    .unwrap();
    // The same address twice in one subnet is refused.
    assert!(db
        .write(|tx| tx.take_subnet_address(&us(&a), subnet.as_str(), 4, "i-other"))
        .is_err());
    db.read(|tx| {
        assert_eq!(tx.subnet_addresses(&us(&a), subnet.as_str())?, vec![4, 5]);
        assert!(tx.subnet_addresses(&us(&b), subnet.as_str())?.is_empty());
        assert_eq!(
            tx.subnet_address_counts(&us(&a))?.get(subnet.as_str()),
            Some(&2)
        );
        assert_eq!(
            tx.count_live_instances_in_group(&us(&a), group.as_str())?,
            1
        );
        assert_eq!(
            tx.count_live_instances_in_group(&us(&b), group.as_str())?,
            0
        );
        assert_eq!(
            tx.count_live_instances_in(&us(&a), NetworkColumn::Subnet, subnet.as_str())?,
            1
        );
        Ok(())
    })
    .unwrap();
    i.state = InstanceState::Terminated;
    db.write(|tx| {
        tx.update_instance(&i)?;
        tx.release_instance_addresses(&us(&a), i.id.as_str())
    })
    .unwrap();
    db.read(|tx| {
        assert!(tx.subnet_addresses(&us(&a), subnet.as_str())?.is_empty());
        assert_eq!(
            tx.count_live_instances_in_group(&us(&a), group.as_str())?,
            0
        );
        assert_eq!(
            tx.count_live_instances_in(&us(&a), NetworkColumn::Subnet, subnet.as_str())?,
            0
        );
        Ok(())
    })
    .unwrap();
}

/// A database written by the previous schema (version 2, instances without network
/// fields) opens, migrates, and its instances load with no VPC.
#[test]
fn upgrade_from_schema_2_keeps_instances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let a = AccountId::generate();
    let old = instance(&a);
    let mut json = serde_json::to_value(&old).unwrap();
    for field in ["vpc_id", "subnet_id", "security_groups", "private_ip"] {
        json.as_object_mut().unwrap().remove(field);
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '2');
             CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL);
             CREATE TABLE instances (account_id TEXT NOT NULL, id TEXT NOT NULL, reservation_id TEXT NOT NULL,
                 state TEXT NOT NULL, host TEXT NOT NULL, terminated_ms BIGINT, data TEXT NOT NULL,
                 PRIMARY KEY (account_id, id));
             CREATE TABLE images (id TEXT PRIMARY KEY, owner TEXT, public BOOLEAN NOT NULL,
                 data TEXT NOT NULL);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO instances VALUES (?1, ?2, ?3, 'pending', 'local', NULL, ?4)",
            rusqlite::params![
                a.as_str(),
                old.id.as_str(),
                old.reservation_id.as_str(),
                json.to_string()
            ],
        )
        .unwrap();
    }
    let db = Db::open(&path).unwrap();
    let back = db
        .read(|tx| tx.instance(&us(&a), old.id.as_str()))
        .unwrap()
        .unwrap();
    assert_eq!(back, old);
    assert_eq!(back.vpc_id, None);
    assert!(back.security_groups.is_empty());
    // Rows from before revisions were numbered by the upgrade, and list.
    let listed = db
        .read(|tx| tx.instances_page(&us(&a), None, 10, 0))
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(*listed[0], old);
    assert!(listed[0].rev.0 > 0);
    assert_eq!(
        db.read(|tx| tx.count_live_instances_in(&us(&a), NetworkColumn::Vpc, "vpc-12345678"))
            .unwrap(),
        0
    );
}

fn interface(account: &AccountId, vpc: &str, subnet: &str, ip: &str) -> NetworkInterface {
    use strato_common::{NetworkInterfaceId, SubnetId, VpcId};
    NetworkInterface {
        id: NetworkInterfaceId::generate(),
        account_id: account.clone(),
        region: "us-east-1".into(),
        subnet_id: SubnetId::parse(subnet).unwrap(),
        vpc_id: VpcId::parse(vpc).unwrap(),
        availability_zone: "us-east-1a".into(),
        private_ip: ip.into(),
        mac_address: format!("02:00:00:00:00:{:02x}", ip.len()),
        description: String::new(),
        groups: vec![],
        attachment: None,
        created_ms: 0,
        client_token: None,
        rev: Default::default(),
    }
}

#[test]
fn upgrade_to_schema_6_indexes_interfaces_by_address() {
    use strato_common::NetworkInterfaceAttachmentId;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let a = AccountId::generate();
    let inst = instance(&a);
    let mut n = interface(&a, "vpc-12345678", "subnet-12345678", "10.0.0.4");
    n.attachment = Some(NetworkInterfaceAttachment {
        id: NetworkInterfaceAttachmentId::generate(),
        instance_id: inst.id.clone(),
        device_index: 1,
        attach_time_ms: 5,
        delete_on_termination: false,
    });
    // A schema 5 database: the interface row has no address columns, and its document
    // no `delete_on_termination`.
    {
        let db = Db::open(&path).unwrap();
        db.write(|tx| {
            tx.insert_instance(&inst)?;
            tx.insert_doc(&n)
        })
        .unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut json = serde_json::to_value(&n).unwrap();
        json["attachment"]
            .as_object_mut()
            .unwrap()
            .remove("delete_on_termination");
        conn.execute_batch(
            "DROP INDEX network_interfaces_address;
             ALTER TABLE network_interfaces DROP COLUMN vpc_id;
             ALTER TABLE network_interfaces DROP COLUMN private_ip;
             DROP INDEX instances_public_ip;
             ALTER TABLE instances DROP COLUMN public_ip;
             DROP TABLE credit_defaults;
             UPDATE meta SET value = '5' WHERE key = 'schema_version';",
        )
        .unwrap();
        conn.execute(
            "UPDATE network_interfaces SET data = ?1",
            [json.to_string()],
        )
        .unwrap();
    }
    let db = Db::open(&path).unwrap();
    let found = db
        .read(|tx| tx.interface_at("vpc-12345678", "10.0.0.4"))
        .unwrap()
        .expect("backfilled columns find the interface");
    assert_eq!(found, n);
    assert!(db
        .read(|tx| tx.interface_at("vpc-12345678", "10.0.0.5"))
        .unwrap()
        .is_none());
    assert!(db
        .read(|tx| tx.interface_at("vpc-87654321", "10.0.0.4"))
        .unwrap()
        .is_none());
    // The lookup uses the index.
    let plan: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "EXPLAIN QUERY PLAN SELECT data FROM network_interfaces WHERE vpc_id = 'v' AND private_ip = 'i'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("network_interfaces_address"), "{plan}");
}

#[test]
fn interfaces_of_instances_by_range_and_host() {
    use strato_common::{NetworkInterfaceAttachmentId, SubnetId, VpcId};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let a = account(&db, "a");
    let subnet = Subnet {
        id: SubnetId::parse("subnet-12345678").unwrap(),
        account_id: a.clone(),
        region: "us-east-1".into(),
        vpc_id: VpcId::parse("vpc-12345678").unwrap(),
        cidr_block: "10.0.0.0/24".into(),
        availability_zone: "us-east-1a".into(),
        default_for_az: false,
        map_public_ip_on_launch: false,
        created_ms: 0,
    };
    let (i1, mut i2) = (instance(&a), instance(&a));
    i2.host = "other".into();
    let attach = |n: &mut NetworkInterface, i: &Instance, index: u32| {
        n.attachment = Some(NetworkInterfaceAttachment {
            id: NetworkInterfaceAttachmentId::generate(),
            instance_id: i.id.clone(),
            device_index: index,
            attach_time_ms: 0,
            delete_on_termination: index == 0,
        });
    };
    let mut n1 = interface(&a, "vpc-12345678", "subnet-12345678", "10.0.0.4");
    attach(&mut n1, &i1, 0);
    let mut n2 = interface(&a, "vpc-12345678", "subnet-12345678", "10.0.0.15");
    attach(&mut n2, &i2, 0);
    let free = interface(&a, "vpc-12345678", "subnet-12345678", "10.0.0.126");
    db.write(|tx| {
        tx.insert_doc(&subnet)?;
        tx.insert_instance(&i1)?;
        tx.insert_instance(&i2)?;
        tx.insert_doc(&n1)?;
        tx.insert_doc(&n2)?;
        tx.insert_doc(&free)
    })
    .unwrap();
    let both = [i1.id.as_str(), i2.id.as_str()];
    let all = db
        .read(|tx| tx.interfaces_of_instances(&us(&a), &both))
        .unwrap();
    assert_eq!(all.len(), 2, "unattached interfaces are not listed");
    let one = db
        .read(|tx| tx.interfaces_of_instances(&us(&a), &[i2.id.as_str()]))
        .unwrap();
    assert_eq!(one, vec![std::sync::Arc::new(n2.clone())]);
    // Long lists go in chunks.
    let many: Vec<String> = (0..1200)
        .map(|_| InstanceId::generate().to_string())
        .collect();
    let mut ids: Vec<&str> = many.iter().map(String::as_str).collect();
    ids.push(i1.id.as_str());
    assert_eq!(
        db.read(|tx| tx.interfaces_of_instances(&us(&a), &ids))
            .unwrap(),
        vec![std::sync::Arc::new(n1.clone())]
    );
    assert_eq!(
        db.read(|tx| tx.nics_of_instances(&us(&a), &ids)).unwrap(),
        vec![(n1.clone(), subnet.clone())]
    );
    let on_local = db.read(|tx| tx.interfaces_on_host("local")).unwrap();
    assert_eq!(on_local, vec![(n1.clone(), subnet.clone())]);
    assert_eq!(
        db.read(|tx| tx.interfaces_of_instance(&us(&a), i2.id.as_str()))
            .unwrap(),
        vec![(n2, subnet)]
    );
    // Another account sees none of them.
    let b = account(&db, "b");
    assert!(db
        .read(|tx| tx.interfaces_of_instance(&us(&b), i1.id.as_str()))
        .unwrap()
        .is_empty());
}

/// Listings read records through their stored revisions: every write, by any path,
/// gives the row a new revision and the next listing its new content; rows not written
/// come back as the very records decoded before.
#[test]
fn listings_see_every_write_and_reuse_what_did_not_change() {
    use strato_common::NetworkInterfaceAttachmentId;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Db::open(&path).unwrap();
    let a = account(&db, "a");
    let (mut i1, i2) = (instance(&a), instance(&a));
    let mut n1 = interface(&a, "vpc-12345678", "subnet-12345678", "10.0.0.4");
    n1.attachment = Some(NetworkInterfaceAttachment {
        id: NetworkInterfaceAttachmentId::generate(),
        instance_id: i1.id.clone(),
        device_index: 0,
        attach_time_ms: 0,
        delete_on_termination: true,
    });
    db.write(|tx| {
        tx.insert_instance(&i1)?;
        tx.insert_instance(&i2)?;
        tx.insert_doc(&n1)
    })
    .unwrap();
    let page = || {
        let mut l = db
            .read(|tx| tx.instances_page(&us(&a), None, 10, 0))
            .unwrap();
        l.sort_by(|x, y| x.launch_index.cmp(&y.launch_index).then(x.id.cmp(&y.id)));
        l
    };
    let of = |l: &[std::sync::Arc<Instance>], id: &InstanceId| {
        l.iter().find(|i| i.id == *id).unwrap().clone()
    };
    let first = page();
    assert_eq!(first.len(), 2);
    let (r1, r2) = (of(&first, &i1.id).rev.0, of(&first, &i2.id).rev.0);
    assert!(
        r1 > 0 && r2 > 0 && r1 != r2,
        "each record has its own revision"
    );
    let again = page();
    assert!(std::sync::Arc::ptr_eq(
        &of(&first, &i1.id),
        &of(&again, &i1.id)
    ));

    // A write through the store: a new revision, the new content.
    i1.state = InstanceState::Running;
    db.write(|tx| tx.update_instance(&i1)).unwrap();
    let after = page();
    assert_eq!(of(&after, &i1.id).state, InstanceState::Running);
    assert_ne!(of(&after, &i1.id).rev.0, r1);
    assert!(std::sync::Arc::ptr_eq(
        &of(&first, &i2.id),
        &of(&after, &i2.id)
    ));

    // A write by any other path (here another connection's plain SQL) is seen too.
    let mut changed = i1.clone();
    changed.state = InstanceState::Stopping;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE instances SET data = ?1 WHERE id = ?2",
            rusqlite::params![serde_json::to_string(&changed).unwrap(), i1.id.as_str()],
        )
        .unwrap();
    }
    assert_eq!(of(&page(), &i1.id).state, InstanceState::Stopping);

    // Interfaces likewise.
    let range = |db: &Db| {
        db.read(|tx| tx.interfaces_in_instance_range(&us(&a), i1.id.as_str(), i1.id.as_str()))
            .unwrap()
    };
    let before = range(&db);
    assert_eq!(before.len(), 1);
    n1.description = "changed".into();
    db.write(|tx| tx.update_doc(&n1)).unwrap();
    let nics = range(&db);
    assert_eq!(nics[0].description, "changed");
    assert_ne!(nics[0].rev.0, before[0].rev.0);
    let by_list = db
        .read(|tx| tx.interfaces_of_instances(&us(&a), &[i1.id.as_str()]))
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&by_list[0], &nics[0]));
}

/// Before regions, rows were filed under the bare account id and documents named no
/// region: the upgrade files them under the region the server was started for.
#[test]
fn upgrade_to_regions_files_legacy_rows_under_the_served_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Db::open(&path).unwrap();
    let a = account(&db, "legacy");
    let eu = Scope::new(a.clone(), "eu-west-1");
    let kp = KeyPair {
        id: strato_common::KeyPairId::generate(),
        account_id: a.clone(),
        region: "eu-west-1".into(),
        name: "old".into(),
        key_type: "ed25519".into(),
        fingerprint: "f".into(),
        public_key: "ssh-ed25519 AAAA".into(),
        created_ms: 0,
    };
    db.write(|tx| tx.insert_key_pair(&kp)).unwrap();
    let mut inst = instance(&a);
    inst.availability_zone = "eu-west-1b".into();
    db.write(|tx| tx.insert_instance(&inst)).unwrap();
    drop(db);
    {
        // Rewind to schema 8: bare account ids, no region in the documents.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let data: String = conn
            .query_row("SELECT data FROM key_pairs", [], |r| r.get(0))
            .unwrap();
        let mut doc: serde_json::Value = serde_json::from_str(&data).unwrap();
        doc.as_object_mut().unwrap().remove("region");
        conn.execute_batch(&format!(
            "UPDATE key_pairs SET account_id = '{a}', data = '{doc}';
             UPDATE instances SET account_id = '{a}';
             UPDATE meta SET value = '8' WHERE key = 'schema_version';
             INSERT INTO meta(key, value) VALUES ('region', 'eu-west-1')
               ON CONFLICT(key) DO UPDATE SET value = excluded.value;",
            a = a.as_str()
        ))
        .unwrap();
    }
    let db = Db::open(&path).unwrap();
    let back = db.read(|tx| tx.key_pair_by_name(&eu, "old")).unwrap();
    assert_eq!(back, Some(kp));
    assert!(db
        .read(|tx| tx.key_pair_by_name(&us(&a), "old"))
        .unwrap()
        .is_none());
    assert_eq!(
        db.read(|tx| tx.instance(&eu, inst.id.as_str()))
            .unwrap()
            .map(|i| i.id),
        Some(inst.id.clone())
    );
    // The rows are the account's still: deleting it removes them from every region.
    assert_eq!(
        db.read(|tx| tx.count_live_instances_everywhere(&a))
            .unwrap(),
        1
    );
}

/// Stored revisions are numbered per database: two databases open in one process
/// number their first rows alike, and each still lists its own.
#[test]
fn databases_in_one_process_never_share_records() {
    let dir = tempfile::tempdir().unwrap();
    let (d1, d2) = (
        Db::open(&dir.path().join("one")).unwrap(),
        Db::open(&dir.path().join("two")).unwrap(),
    );
    let a = AccountId::generate();
    let (i1, i2) = (instance(&a), instance(&a));
    d1.write(|tx| tx.insert_instance(&i1)).unwrap();
    d2.write(|tx| tx.insert_instance(&i2)).unwrap();
    for _ in 0..2 {
        let l1 = d1
            .read(|tx| tx.instances_page(&us(&a), None, 10, 0))
            .unwrap();
        let l2 = d2
            .read(|tx| tx.instances_page(&us(&a), None, 10, 0))
            .unwrap();
        assert_eq!(l1.len(), 1);
        assert_eq!(l2.len(), 1);
        assert_eq!(l1[0].id, i1.id);
        assert_eq!(l2[0].id, i2.id);
    }
}

/// An image of `owner` in `region` (or a built-in one, `None` owner and region).
fn an_image(owner: Option<&AccountId>, region: Option<&str>) -> Image {
    Image {
        id: ImageId::generate(),
        owner: owner.cloned(),
        owner_alias: None,
        name: "img".into(),
        description: String::new(),
        architecture: "x86_64".into(),
        root_device_name: "/dev/xvda".into(),
        root_device_type: "ebs".into(),
        virtualization_type: "hvm".into(),
        hypervisor: "xen".into(),
        kernel_id: None,
        ramdisk_id: None,
        public: owner.is_none(),
        creation_ms: 0,
        platform_details: "Linux/UNIX".into(),
        ena_support: true,
        boot_mode: "legacy-bios".into(),
        root_size_gib: 8,
        boot: ImageBoot::default(),
        region: region.map(str::to_string),
        state: ImageState::Available,
        state_reason: None,
        block_devices: vec![],
        shared_with: vec![],
        imds_support: None,
        deprecation_ms: None,
        source_instance_id: None,
        source_image_id: None,
        source_region: None,
        client_token: None,
    }
}

/// Who sees which image where: built-ins everywhere, an account's own images in their
/// region, shared ones for the accounts named, deregistered ones for nobody; an
/// account's deletion takes its images and its grants.
#[test]
fn images_are_seen_by_region_owner_and_grant() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let a = account(&db, "a");
    let b = account(&db, "b");
    let builtin = an_image(None, None);
    let own = an_image(Some(&a), Some("us-east-1"));
    let mut shared = an_image(Some(&a), Some("us-east-1"));
    shared.shared_with = vec![b.clone()];
    let mut gone = an_image(Some(&a), Some("us-east-1"));
    gone.state = ImageState::Deregistered;
    let west = an_image(Some(&a), Some("eu-west-1"));
    db.write(|tx| {
        for i in [&builtin, &own, &shared, &gone, &west] {
            tx.put_image(i)?;
        }
        Ok(())
    })
    .unwrap();
    let seen = |acct: &AccountId, region: &str| {
        let mut ids: Vec<String> = db
            .read(|tx| tx.visible_images(acct, region))
            .unwrap()
            .into_iter()
            .map(|i| i.id.to_string())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |v: Vec<&Image>| {
        let mut ids: Vec<String> = v.iter().map(|i| i.id.to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(seen(&a, "us-east-1"), sorted(vec![&builtin, &own, &shared]));
    assert_eq!(seen(&a, "eu-west-1"), sorted(vec![&builtin, &west]));
    assert_eq!(seen(&b, "us-east-1"), sorted(vec![&builtin, &shared]));
    assert_eq!(seen(&b, "eu-west-1"), sorted(vec![&builtin]));
    assert!(db
        .read(|tx| tx.visible_image(&b, "us-east-1", own.id.as_str()))
        .unwrap()
        .is_none());
    assert!(db
        .read(|tx| tx.visible_image(&b, "eu-west-1", shared.id.as_str()))
        .unwrap()
        .is_none());
    // Unsharing is one write of the document.
    shared.shared_with.clear();
    db.write(|tx| tx.put_image(&shared)).unwrap();
    assert_eq!(seen(&b, "us-east-1"), sorted(vec![&builtin]));
    assert_eq!(
        db.read(|tx| tx.owned_images(&a, "us-east-1"))
            .unwrap()
            .len(),
        3
    );
    db.write(|tx| tx.delete_account(&a).map(|_| ())).unwrap();
    assert_eq!(seen(&b, "us-east-1"), sorted(vec![&builtin]));
}
