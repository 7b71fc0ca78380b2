//! The recorder's unit tests: the correlator, the writer's ordering, prepared events.
use super::*;

fn rec(name: &str, reason: &str, message: &str) -> Record {
    Record {
        object: ObjectRef(ObjectReference {
            kind: "ReplicaSet".into(),
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            api_version: "apps/v1".into(),
            ..Default::default()
        }),
        type_: "Normal",
        reason: reason.into(),
        message: message.into(),
        at: std::time::SystemTime::now(),
    }
}

fn creates_and_patches(ws: &[Write]) -> (usize, usize, usize) {
    ws.iter().fold((0, 0, 0), |(c, p, s), w| match w {
        Write::Create { .. } => (c + 1, p, s),
        Write::Patch { .. } => (c, p + 1, s),
        Write::Skip => (c, p, s + 1),
    })
}

/// Applies writes after a random delay each, as a store under concurrent load may, and
/// keeps what it applied in the order it applied it.
#[derive(Clone)]
struct Jittery {
    applied: Arc<std::sync::Mutex<Vec<(String, i32, bool)>>>,
    rng: Arc<std::sync::Mutex<rand::rngs::StdRng>>,
}

impl Jittery {
    fn new(seed: u64) -> Jittery {
        use rand::SeedableRng;
        Jittery {
            applied: Default::default(),
            rng: Arc::new(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(
                seed,
            ))),
        }
    }

    async fn delay(&self) {
        use rand::Rng;
        let ms = self.rng.lock().unwrap().random_range(0..20);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

impl Sink for Jittery {
    async fn create(&self, event: Event) {
        self.delay().await;
        let name = event.metadata.unwrap().name;
        self.applied.lock().unwrap().push((name, event.count, true));
    }

    async fn patch(&self, event: Event) {
        self.delay().await;
        let name = event.metadata.unwrap().name;
        self.applied
            .lock()
            .unwrap()
            .push((name, event.count, false));
    }
}

/// The regression test for writes racing: with writes that take random times, every Event's
/// create lands first, its counts only grow, and the last count is the number recorded.
#[tokio::test(start_paused = true)]
async fn writes_of_one_event_apply_in_order_and_the_latest_count_wins() {
    for seed in 0..20 {
        let sink = Jittery::new(seed);
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(sink.clone(), Arc::new(Shared::new("c", "")), rx));
        // 25 repeats (the spam filter's burst) on each of four objects, interleaved.
        for _ in 0..25 {
            for o in ["a", "b", "c", "d"] {
                tx.send(Msg::Record(rec(
                    o,
                    "BackOff",
                    "Back-off restarting failed container",
                )))
                .await
                .unwrap();
            }
        }
        drop(tx);
        task.await.unwrap();
        let applied = sink.applied.lock().unwrap().clone();
        let mut last: HashMap<String, i32> = HashMap::new();
        for (name, count, create) in applied {
            match last.get(&name) {
                None => assert!(create, "seed {seed}: {name} patched before its create"),
                Some(&prev) => assert!(
                    !create && count > prev,
                    "seed {seed}: {name} went from {prev} to {count}"
                ),
            }
            last.insert(name, count);
        }
        assert_eq!(last.len(), 4);
        assert!(last.values().all(|&c| c == 25), "seed {seed}: {last:?}");
    }
}

#[test]
fn repeats_fold_into_one_event_with_a_count() {
    let mut c = Correlator::default();
    let t = Instant::now();
    let a = c.correlate(&rec("rs", "BackOff", "same"), t, 1);
    let b = c.correlate(&rec("rs", "BackOff", "same"), t, 2);
    let Write::Create { name, .. } = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        b,
        Write::Patch {
            name,
            namespace: "default".into(),
            message: "same".into(),
            count: 2,
            first_secs: 0,
        }
    );
}

#[test]
fn the_tenth_distinct_message_starts_one_combined_event() {
    let mut c = Correlator::default();
    let t = Instant::now();
    let ws: Vec<Write> = (0..12)
        .map(|i| {
            c.correlate(
                &rec("rs", "SuccessfulCreate", &format!("Created pod: p{i}")),
                t,
                i,
            )
        })
        .collect();
    assert_eq!(creates_and_patches(&ws), (10, 2, 0));
    match &ws[9] {
        Write::Create { message, .. } => {
            assert_eq!(message, "(combined from similar events): Created pod: p9")
        }
        w => panic!("{w:?}"),
    }
    assert!(matches!(ws[11], Write::Patch { count: 3, .. }));
}

#[test]
fn one_object_gets_a_burst_of_25_writes_then_one_per_five_minutes() {
    let mut c = Correlator::default();
    let t = Instant::now();
    let ws: Vec<Write> = (0..1000)
        .map(|i| {
            c.correlate(
                &rec("rs", "SuccessfulCreate", &format!("Created pod: p{i}")),
                t,
                i,
            )
        })
        .collect();
    assert_eq!(creates_and_patches(&ws), (10, 15, 975));
    // Other objects have their own budget.
    assert!(matches!(
        c.correlate(&rec("other", "SuccessfulCreate", "x"), t, 5000),
        Write::Create { .. }
    ));
    let later = t + Duration::from_secs(300);
    assert!(matches!(
        c.correlate(
            &rec("rs", "SuccessfulCreate", "Created pod: late"),
            later,
            6000
        ),
        Write::Patch { .. }
    ));
    assert_eq!(
        c.correlate(
            &rec("rs", "SuccessfulCreate", "Created pod: later"),
            later,
            6001
        ),
        Write::Skip
    );
}

fn pod(name: &str) -> ObjectRef {
    ObjectRef(ObjectReference {
        kind: "Pod".into(),
        namespace: "ns".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        api_version: "v1".into(),
        ..Default::default()
    })
}

/// Until the sink has applied `n` writes (the paused clock runs the jitter).
async fn applied(sink: &Jittery, n: usize) -> Vec<(String, i32, bool)> {
    loop {
        let a = sink.applied.lock().unwrap().clone();
        if a.len() >= n {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The scheduler's Scheduled Event decided before its binding: a new Event is handed out to
/// ride along (and not written by the recorder once it did); a cancelled one is forgotten
/// (the next identical one is a new Event again, and no spam token is spent); one that did
/// not ride is written by the recorder; a repeat is a patch after `done`.
#[tokio::test(start_paused = true)]
async fn a_prepared_event_rides_along_or_is_forgotten_with_its_operation() {
    let sink = Jittery::new(1);
    let r = Recorder::with_sink(sink.clone(), "default-scheduler", "");
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let msg = "Successfully assigned ns/a to n1";
    // 30 failed bindings: more than the spam filter's burst of 25, none counted.
    for _ in 0..30 {
        let p = r.prepare_normal_at(&pod("a"), "Scheduled", msg, at);
        assert!(p.event().is_some());
        p.cancel();
    }
    let p = r.prepare_normal_at(&pod("a"), "Scheduled", msg, at);
    let e = p.event().expect("a new Event").clone();
    assert_eq!(e.reason, "Scheduled");
    assert_eq!(e.message, msg);
    assert_eq!(e.r#type, "Normal");
    assert_eq!(e.count, 1);
    assert_eq!(e.first_timestamp, "2023-11-14T22:13:20Z");
    assert_eq!(e.last_timestamp, e.first_timestamp);
    assert_eq!(
        e.source.clone().unwrap_or_default().component,
        "default-scheduler"
    );
    assert_eq!(e.involved_object.clone().unwrap_or_default(), pod("a").0);
    let m = e.metadata.clone().unwrap_or_default();
    assert_eq!(
        (m.namespace.as_str(), m.name.as_str()),
        ("ns", "a.17979cfe362a0000")
    );
    // It rode in the binding and the store created it.
    p.done(Some(Ok(())));
    // The same again (a repeat): a patch of that Event, written by the recorder after done.
    let p = r.prepare_normal_at(&pod("a"), "Scheduled", msg, at);
    assert!(p.event().is_none());
    p.done(None);
    // Another pod's, not carried (a single Bind): the recorder creates it.
    let p = r.prepare_normal_at(
        &pod("b"),
        "Scheduled",
        "Successfully assigned ns/b to n1",
        at,
    );
    assert!(p.event().is_some());
    p.done(None);
    // Dropped without a word: cancelled.
    drop(r.prepare_normal_at(&pod("c"), "Scheduled", "x", at));
    let mut got = applied(&sink, 2).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("a.17979cfe362a0000".to_string(), 2, false),
            ("b.17979cfe362a0000".to_string(), 1, true)
        ]
    );
    let p = r.prepare_normal_at(&pod("c"), "Scheduled", "x", at);
    assert!(p.event().is_some(), "the dropped one was forgotten");
}

#[test]
fn undo_takes_back_an_aggregation_step() {
    let mut c = Correlator::default();
    let t = Instant::now();
    for i in 0..9 {
        c.correlate(&rec("rs", "R", &format!("m{i}")), t, i);
    }
    // The 10th distinct message would start the combined Event; undone, it did not.
    let mut u = Undo::default();
    let w = c.correlate_with(&rec("rs", "R", "m9"), t, 9, Some(&mut u));
    assert!(
        matches!(&w, Write::Create { message, .. } if message.starts_with("(combined")),
        "{w:?}"
    );
    c.undo(u);
    let agg = c.aggregates.values().next().expect("aggregate");
    assert_eq!(agg.messages.len(), 9);
    assert!(!agg.messages.contains("m9"));
    assert!(matches!(
        c.correlate(&rec("rs", "R", "m0"), t, 10),
        Write::Patch { count: 2, .. }
    ));
}

/// A repeat's write carries the whole Event (the first one's firstTimestamp, the new count), so
/// that the sink can create it if its patch finds it gone, as client-go's recordToSink does.
#[test]
fn a_repeat_carries_the_whole_event_to_create_if_gone() {
    let shared = Shared::new("c", "h");
    let first = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
    let mut r = rec("p", "Scheduled", "assigned");
    r.at = first;
    let Some((_, Op::Create(created))) = shared.decide(r, None) else {
        panic!("first: not a create")
    };
    let mut r = rec("p", "Scheduled", "assigned");
    r.at = first + Duration::from_secs(60);
    let Some((key, Op::Patch(repeat))) = shared.decide(r, None) else {
        panic!("repeat: not a patch")
    };
    let name = created.metadata.as_ref().unwrap().name.clone();
    assert_eq!(key, ("default".to_string(), name.clone()));
    assert_eq!(repeat.metadata.as_ref().unwrap().name, name);
    assert_eq!(repeat.count, 2);
    assert_eq!(repeat.first_timestamp, created.first_timestamp);
    assert_eq!(repeat.first_timestamp, "1970-01-01T00:16:40Z");
    assert_eq!(repeat.last_timestamp, "1970-01-01T00:17:40Z");
    assert_eq!(repeat.message, "assigned");
    assert_eq!(repeat.reason, "Scheduled");
    assert_eq!(repeat.involved_object, created.involved_object);
}
