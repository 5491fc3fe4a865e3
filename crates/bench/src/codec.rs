//! The front door's own cost, in process: decoding EC2 Query requests, validating them
//! against the generated schema and decoding them into their typed requests, and
//! building and encoding DescribeInstances answers with the server's real builder and
//! the generated encoder. No network, no store: what the generated layer adds to a
//! request, beside the end-to-end latencies the rest of the benchmark measures.

use std::time::{Duration, Instant};
use strato_common::{
    AccountId, ImageId, InstanceId, NetworkInterfaceAttachmentId, NetworkInterfaceId,
    ReservationId, ResourceId, SecurityGroupId, SubnetId, VpcId,
};
use strato_control::instances::InstanceInterfaces;
use strato_domain::{
    Desired, DocRev, GroupRef, Instance, InstanceState, NetworkInterface,
    NetworkInterfaceAttachment, ShutdownBehavior,
};
use strato_ec2_model::Operation;
use strato_ec2_wire::codec::{respond, Decode, Node};
use strato_ec2_wire::types as wire;
use strato_ec2_wire::Params;

/// One measured operation: median and p99 of per-call times, in microseconds.
pub struct CodecFigure {
    pub what: String,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// A RunInstances body as boto3 sends it for a typical launch (tags, groups, subnet,
/// metadata options, user data).
const RUN_INSTANCES: &str = "Action=RunInstances&Version=2016-11-15&ImageId=ami-05a9d2c7e4b1f3801\
&InstanceType=t3.micro&MinCount=1&MaxCount=1&KeyName=deploy\
&SecurityGroupId.1=sg-0123456789abcdef0&SecurityGroupId.2=sg-0fedcba9876543210\
&SubnetId=subnet-0123456789abcdef0&MetadataOptions.HttpTokens=required\
&MetadataOptions.HttpPutResponseHopLimit=2&UserData=IyEvYmluL3NoCmVjaG8gaGVsbG8K\
&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name\
&TagSpecification.1.Tag.1.Value=web-1&TagSpecification.1.Tag.2.Key=team\
&TagSpecification.1.Tag.2.Value=platform&CreditSpecification.CpuCredits=standard";

/// DescribeInstances with two filters and a page size, as Terraform and Ansible send it.
const DESCRIBE_INSTANCES: &str = "Action=DescribeInstances&Version=2016-11-15\
&Filter.1.Name=instance-state-name&Filter.1.Value.1=pending&Filter.1.Value.2=running\
&Filter.2.Name=tag%3AName&Filter.2.Value.1=web-%2A&MaxResults=1000";

/// Parses `body`, validates it against `op`'s schema and decodes it into `T`, as the
/// server does before a handler runs.
fn decode_and_validate<T: Decode>(body: &str, op: Operation) -> usize {
    let p = Params::parse("", body.as_bytes());
    let served = op
        .served()
        .expect("the benchmark decodes served operations");
    // The benchmark's requests are valid: an error here is a bug in the benchmark.
    strato_ec2_wire::validate::validate(op.name(), served, &p).expect("a valid request");
    let node = Node::build(p.iter());
    let req = T::decode(&node).expect("a decodable request");
    std::hint::black_box(&req);
    1
}

fn instance(n: usize, account: &AccountId) -> (Instance, NetworkInterface) {
    let id = InstanceId::generate();
    let ip = format!("172.31.{}.{}", n / 250, n % 250 + 4);
    let subnet = SubnetId::generate();
    let vpc = VpcId::generate();
    let inst = Instance {
        id: id.clone(),
        account_id: account.clone(),
        reservation_id: ReservationId::generate(),
        image_id: ImageId::generate(),
        instance_type: "t3.micro".into(),
        key_name: Some("deploy".into()),
        launch_index: 0,
        state: InstanceState::Running,
        state_reason: None,
        state_transition_reason: String::new(),
        launch_time_ms: 1_700_000_000_000,
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
        vpc_id: Some(vpc.clone()),
        subnet_id: Some(subnet.clone()),
        security_groups: vec![GroupRef {
            id: SecurityGroupId::generate(),
            name: "default".into(),
        }],
        private_ip: Some(ip.clone()),
        public_ip: Some(format!("198.51.100.{}", n % 250 + 1)),
        auto_public_ip: true,
        cpu_credits: Some("unlimited".into()),
        monitoring: false,
        ebs_optimized: false,
        cpu_options: None,
        auto_recovery: "default".into(),
        volume_tags: vec![],
        root_volume: true,
        // As if read from the store, so the front door may keep its encoded item.
        rev: DocRev(2 * n as u64 + 1),
    };
    let nic = NetworkInterface {
        id: NetworkInterfaceId::generate(),
        account_id: account.clone(),
        region: "us-east-1".into(),
        subnet_id: subnet,
        vpc_id: vpc,
        availability_zone: "us-east-1a".into(),
        private_ip: ip,
        mac_address: format!("02:00:00:00:{:02x}:{:02x}", n / 256 % 256, n % 256),
        description: String::new(),
        groups: inst.security_groups.clone(),
        attachment: Some(NetworkInterfaceAttachment {
            id: NetworkInterfaceAttachmentId::generate(),
            instance_id: id,
            device_index: 0,
            attach_time_ms: 1_700_000_000_000,
            delete_on_termination: true,
        }),
        created_ms: 1_700_000_000_000,
        client_token: None,
        rev: DocRev(2 * n as u64 + 2),
    };
    (inst, nic)
}

/// Builds and encodes a DescribeInstances answer of `list` as the server does (one
/// reservation per instance, two tags each); returns its length.
fn encode(
    list: &[(Instance, Vec<(String, String)>)],
    nics: &InstanceInterfaces,
    owner: &str,
) -> usize {
    respond(
        Operation::DescribeInstances,
        "req-0",
        &build(list, nics, owner),
    )
    .len()
}

/// The typed DescribeInstances answer of `list`, built as the server builds it.
fn build(
    list: &[(Instance, Vec<(String, String)>)],
    nics: &InstanceInterfaces,
    owner: &str,
) -> wire::DescribeInstancesResult {
    wire::DescribeInstancesResult {
        reservations: Some(
            list.iter()
                .map(|(i, tags)| wire::Reservation {
                    reservation_id: Some(i.reservation_id.to_string()),
                    owner_id: Some(owner.to_string()),
                    groups: Some(vec![]),
                    instances: Some(vec![strato_server::actions::instances::instance_item(
                        "us-east-1",
                        i,
                        tags,
                        nics,
                        &[],
                    )]),
                    requester_id: None,
                })
                .collect(),
        ),
        next_token: None,
    }
}

/// Times `f` in batches of `batch` calls for about `budget`; per-call p50 and p99 in
/// microseconds over the batches (batching keeps the clock's own cost out).
fn time_it(budget: Duration, batch: usize, mut f: impl FnMut() -> usize) -> (f64, f64) {
    let mut sink = 0usize;
    for _ in 0..batch {
        sink = sink.wrapping_add(f());
    }
    let mut per_call = vec![];
    let t0 = Instant::now();
    // A fixed number of rounds instead of a time budget, for instruction counts
    // (`valgrind --tool=callgrind`) that compare across builds.
    let rounds: Option<usize> = std::env::var("STRATO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok());
    while match rounds {
        Some(n) => per_call.len() < n,
        None => t0.elapsed() < budget || per_call.len() < 5,
    } {
        let t = Instant::now();
        for _ in 0..batch {
            sink = sink.wrapping_add(f());
        }
        per_call.push(t.elapsed().as_secs_f64() * 1e6 / batch as f64);
    }
    std::hint::black_box(sink);
    per_call.sort_by(f64::total_cmp);
    let at = |p: f64| {
        per_call[((p * per_call.len() as f64).ceil() as usize).clamp(1, per_call.len()) - 1]
    };
    (at(0.5), at(0.99))
}

/// Runs every codec measurement, about `budget` each.
pub fn measure(budget: Duration) -> Vec<CodecFigure> {
    let account = AccountId::generate();
    let owner = account.to_string();
    let mut records = vec![];
    let mut interfaces = vec![];
    for n in 0..1000 {
        let (i, nic) = instance(n, &account);
        let tags = vec![
            ("Name".to_string(), format!("web-{n}")),
            ("team".to_string(), "platform".to_string()),
        ];
        records.push((i, tags));
        interfaces.push(std::sync::Arc::new(nic));
    }
    let nics = InstanceInterfaces::new(interfaces, &[]);
    let mut out = vec![];
    let mut add = |what: &str, (p50, p99): (f64, f64)| {
        eprintln!("    {what:<60} p50 {p50:>9.2} us   p99 {p99:>9.2} us");
        out.push(CodecFigure {
            what: what.to_string(),
            p50_us: p50,
            p99_us: p99,
        });
    };
    add(
        "decode + validate RunInstances (19 parameters)",
        time_it(budget, 200, || {
            decode_and_validate::<wire::RunInstancesRequest>(RUN_INSTANCES, Operation::RunInstances)
        }),
    );
    add(
        "decode + validate DescribeInstances (2 filters, MaxResults)",
        time_it(budget, 200, || {
            decode_and_validate::<wire::DescribeInstancesRequest>(
                DESCRIBE_INSTANCES,
                Operation::DescribeInstances,
            )
        }),
    );
    add(
        "encode DescribeInstances answer, 1 instance",
        time_it(budget, 200, || encode(&records[..1], &nics, &owner)),
    );
    use strato_server::actions::instances::forget_rendered;
    add(
        "encode DescribeInstances answer, 1,000 instances, none kept",
        time_it(budget, 1, || {
            forget_rendered();
            encode(&records, &nics, &owner)
        }),
    );
    add(
        "encode DescribeInstances answer, 1,000 instances, all kept",
        time_it(budget, 1, || encode(&records, &nics, &owner)),
    );
    out
}
