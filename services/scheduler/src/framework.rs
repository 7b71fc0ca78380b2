//! The scheduling framework: extension-point traits, [`Status`], [`CycleState`], the plugin
//! [`Registry`], [`Profile`]s and [`schedule_one`], one scheduling cycle as kube-scheduler runs
//! it (`schedulePod`):
//!
//! 1. PreFilter plugins run once; a rejection fails every node with that status; `Skip` skips
//!    the plugin's Filter.
//! 2. Filter plugins run per node, starting at a rotating index, stopping at the first
//!    rejection per node, until [`num_feasible_nodes_to_find`] nodes are feasible.
//! 3. No feasible node: PostFilter plugins run (preemption would live there), and the result is
//!    a [`FitError`] whose `Display` is kube-scheduler's aggregate message.
//! 4. One feasible node: it is chosen without scoring (as upstream).
//! 5. PreScore, then Score per plugin per node, `normalize` (when the plugin has
//!    [`ScoreExtensions`]) into `0..=MAX_NODE_SCORE`, times the plugin's weight, summed.
//! 6. The highest total wins; ties are broken uniformly at random, as kube-scheduler's
//!    `selectHost` (reservoir sampling over the nodes with the highest total).
use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use coxswain_api::v1;

use crate::metrics::{Observer, Point};
use crate::nodeset::NodeSet;
use crate::snapshot::{pod_name, pod_namespace, NodeInfo, Snapshot};

mod feasible;
mod scoring;

pub use feasible::*;
pub use scoring::*;

/// The highest score a plugin may give after normalization.
pub const MAX_NODE_SCORE: i64 = 100;
/// The lowest.
pub const MIN_NODE_SCORE: i64 = 0;
/// The name of the default profile.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Below this many nodes every node is evaluated; never fewer feasible nodes are sought.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The floor of the adaptive percentage.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;

/// A status code, as the framework's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Success,
    /// The node does not fit now; preemption might help.
    Unschedulable,
    /// The node does not fit and preemption cannot help.
    UnschedulableAndUnresolvable,
    /// An internal error.
    Error,
    /// From PreFilter/PreScore: the plugin has nothing to do this cycle.
    Skip,
}

/// A plugin's verdict: a code, the reasons (shown to users), and the plugin that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    /// Static reasons are borrowed and a single reason is stored inline: a rejection costs
    /// no allocation.
    pub reasons: Reasons,
    pub plugin: Cow<'static, str>,
}

/// A status's reasons: one inline (the common case: no heap allocation per rejected node),
/// or several. Derefs to a slice.
#[derive(Debug, Clone)]
pub enum Reasons {
    One(Cow<'static, str>),
    Many(Vec<Cow<'static, str>>),
}

impl std::ops::Deref for Reasons {
    type Target = [Cow<'static, str>];
    fn deref(&self) -> &Self::Target {
        match self {
            Reasons::One(r) => std::slice::from_ref(r),
            Reasons::Many(v) => v,
        }
    }
}

impl PartialEq for Reasons {
    fn eq(&self, o: &Reasons) -> bool {
        **self == **o
    }
}

impl Eq for Reasons {}

impl<'a> IntoIterator for &'a Reasons {
    type Item = &'a Cow<'static, str>;
    type IntoIter = std::slice::Iter<'a, Cow<'static, str>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Default for Status {
    fn default() -> Self {
        Status::success()
    }
}

impl Status {
    pub fn new(code: Code, reasons: Vec<String>) -> Status {
        Status {
            code,
            reasons: Reasons::Many(reasons.into_iter().map(Cow::Owned).collect()),
            plugin: Cow::Borrowed(""),
        }
    }
    fn one(code: Code, reason: Cow<'static, str>) -> Status {
        Status {
            code,
            reasons: Reasons::One(reason),
            plugin: Cow::Borrowed(""),
        }
    }
    #[inline]
    fn bare(code: Code) -> Status {
        Status {
            code,
            reasons: Reasons::Many(Vec::new()),
            plugin: Cow::Borrowed(""),
        }
    }
    #[inline]
    pub fn success() -> Status {
        Status::bare(Code::Success)
    }
    pub fn skip() -> Status {
        Status::bare(Code::Skip)
    }
    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::one(Code::Unschedulable, reason.into())
    }
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::one(Code::UnschedulableAndUnresolvable, reason.into())
    }
    pub fn error(msg: impl Into<Cow<'static, str>>) -> Status {
        Status::one(Code::Error, msg.into())
    }
    pub fn with_plugin(mut self, plugin: impl Into<Cow<'static, str>>) -> Status {
        self.plugin = plugin.into();
        self
    }
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }
    /// Unschedulable or UnschedulableAndUnresolvable.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
    /// The reasons joined with ", ".
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Per-cycle data plugins share between their extension points (PreFilter computes, Filter
/// reads), keyed by type: each plugin stores its own state type.
#[derive(Default)]
pub struct CycleState {
    /// A handful of entries: a linear scan beats hashing.
    data: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
    /// Plugins whose PreFilter returned Skip: their Filter does not run.
    pub skip_filter: HashSet<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score does not run (scores 0).
    pub skip_score: HashSet<&'static str>,
}

impl CycleState {
    pub fn new() -> CycleState {
        CycleState::default()
    }
    pub fn write<T: Any + Send + Sync>(&mut self, v: T) {
        let id = TypeId::of::<T>();
        match self.data.iter_mut().find(|(t, _)| *t == id) {
            Some(e) => e.1 = Box::new(v),
            None => self.data.push((id, Box::new(v))),
        }
    }
    pub fn read<T: Any + Send + Sync>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.data.iter().find(|(t, _)| *t == id)?.1.downcast_ref()
    }
}

/// A change in the cluster that may make unschedulable pods schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterEvent {
    NodeAdd,
    /// A node's labels changed.
    NodeLabel,
    /// A node's taints changed.
    NodeTaint,
    /// A node's allocatable changed.
    NodeAllocatable,
    /// A node's `spec.unschedulable` changed.
    NodeSchedulable,
    /// A pod was bound (or assumed) to a node.
    AssignedPodAdd,
    /// A bound pod's labels changed.
    AssignedPodUpdate,
    /// A bound pod was deleted (or finished).
    AssignedPodDelete,
    /// A PersistentVolumeClaim, PersistentVolume or StorageClass was added or changed.
    VolumeChange,
}

impl ClusterEvent {
    pub const ALL: &'static [ClusterEvent] = &[
        ClusterEvent::NodeAdd,
        ClusterEvent::NodeLabel,
        ClusterEvent::NodeTaint,
        ClusterEvent::NodeAllocatable,
        ClusterEvent::NodeSchedulable,
        ClusterEvent::AssignedPodAdd,
        ClusterEvent::AssignedPodUpdate,
        ClusterEvent::AssignedPodDelete,
        ClusterEvent::VolumeChange,
    ];
}

/// A plugin: a name, and the extension points it implements.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// The cluster events that may make a pod this plugin rejected schedulable (upstream's
    /// `EventsToRegister`); such an event moves the pod out of the unschedulable queue.
    fn events(&self) -> &'static [ClusterEvent] {
        ClusterEvent::ALL
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        None
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        None
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilter> {
        None
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        None
    }
    fn as_score(&self) -> Option<&dyn Score> {
        None
    }
    fn as_reserve(&self) -> Option<&dyn Reserve> {
        None
    }
    fn as_bind(&self) -> Option<&dyn Bind> {
        None
    }
}

/// Runs once per cycle before filtering: precompute into the [`CycleState`].
pub trait PreFilter {
    fn pre_filter(&self, state: &mut CycleState, pod: &v1::Pod, snapshot: &Snapshot) -> Status;
}

/// Does `pod` fit on `node`?
pub trait Filter {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status;

    /// The cycle's fast path: None when this filter passes the node, else the status
    /// [`Filter::filter`] returns for it, so no [`Status`] is built for a node that passes.
    /// Must agree with `filter` (None exactly when it returns Success, else its status); the
    /// default runs `filter`. A plugin overrides it where a passing node is cheaper to tell
    /// than to answer with a status (`property.rs` checks each plugin against `filter`).
    fn rejection(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Option<Status> {
        let s = self.filter(state, pod, node);
        (!s.is_success()).then_some(s)
    }

    /// Exactly the nodes (indices into the snapshot's nodes) this filter passes this cycle,
    /// when its PreFilter could tell them from an index ([`crate::nodeset`]); None: unknown,
    /// run [`Filter::filter`] on each node. The framework then skips the nodes outside the set
    /// and does not run this filter on the nodes inside it. Must agree with `filter`.
    fn candidates<'a>(&self, _state: &'a CycleState) -> Option<&'a NodeSet> {
        None
    }
}

/// What a PostFilter plugin made of an unschedulable pod.
#[derive(Debug, Clone, Default)]
pub struct PostFilterResult {
    /// A node the pod may fit on after, e.g., preemption.
    pub nominated_node: Option<String>,
    pub status: Status,
}

/// Runs when no node is feasible (preemption lives here).
pub trait PostFilter {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &v1::Pod,
        snapshot: &Snapshot,
        diagnosis: &BTreeMap<String, Status>,
    ) -> PostFilterResult;
}

/// Runs once before scoring, over the feasible nodes.
pub trait PreScore {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &v1::Pod,
        snapshot: &Snapshot,
        nodes: &[&NodeInfo],
    ) -> Status;
}

/// A node's score from one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore {
    pub name: Arc<str>,
    pub score: i64,
}

/// Ranks a feasible node.
pub trait Score {
    fn score(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> i64;
    /// Scores every node of `nodes` into `out` (same length and order): exactly what
    /// [`Score::score`] gives each. The framework scores a cycle's feasible nodes through
    /// this; a plugin overrides it to resolve its cycle state once per cycle, not per node.
    fn score_all(&self, state: &CycleState, pod: &v1::Pod, nodes: &[&NodeInfo], out: &mut [i64]) {
        for (o, n) in out.iter_mut().zip(nodes) {
            *o = self.score(state, pod, n);
        }
    }
    fn score_extensions(&self) -> Option<&dyn ScoreExtensions> {
        None
    }
}

/// Maps a plugin's raw scores over all feasible nodes into `0..=MAX_NODE_SCORE`.
pub trait ScoreExtensions {
    fn normalize(&self, state: &CycleState, pod: &v1::Pod, scores: &mut [NodeScore]);
}

/// Claims resources on the chosen node before binding; `unreserve` undoes.
pub trait Reserve {
    fn reserve(&self, state: &mut CycleState, pod: &v1::Pod, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &v1::Pod, node: &str);
}

/// Binds the pod to the node (wired by the daemon later).
pub trait Bind {
    fn bind(&self, state: &CycleState, pod: &v1::Pod, node: &str) -> Status;
}

/// kube-scheduler's `DefaultNormalizeScore`: scale so the highest score becomes
/// `max_priority` (all stay 0 when the highest is 0), then reverse if asked.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [NodeScore]) {
    let max = scores.iter().map(|s| s.score).max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| s.score = max_priority);
        }
        return;
    }
    for s in scores {
        let mut v = max_priority * s.score / max;
        if reverse {
            v = max_priority - v;
        }
        s.score = v;
    }
}

/// A plugin's arguments from `pluginConfig[].args` (JSON; `Null` when none are given).
pub type PluginArgs = serde_json::Value;

/// Builds a plugin from its arguments; an error message names the bad argument.
pub type PluginFactory = fn(&PluginArgs) -> Result<Arc<dyn Plugin>, String>;

/// Plugin names to constructors.
#[derive(Default, Clone)]
pub struct Registry {
    factories: BTreeMap<&'static str, PluginFactory>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }
    /// Register a plugin; an error when the name is taken.
    pub fn register(&mut self, name: &'static str, f: PluginFactory) -> Result<(), String> {
        if self.factories.insert(name, f).is_some() {
            return Err(format!("a plugin named {name} already exists"));
        }
        Ok(())
    }
    /// Build with default arguments; None when the name is unknown.
    pub fn build(&self, name: &str) -> Option<Arc<dyn Plugin>> {
        self.build_with(name, &PluginArgs::Null)?.ok()
    }
    /// Build with arguments; None when the name is unknown.
    pub fn build_with(
        &self,
        name: &str,
        args: &PluginArgs,
    ) -> Option<Result<Arc<dyn Plugin>, String>> {
        self.factories.get(name).map(|f| f(args))
    }
    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }
}

/// An out-of-process extender (`coxswain.v1.SchedulerExtender`) as a profile lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtenderConfig {
    /// gRPC URL, e.g. `http://127.0.0.1:7070`.
    pub address: String,
    /// Multiplies the extender's 0..=10 scores (scaled to 0..=100); 0 means it does not score.
    pub weight: i64,
    pub timeout: std::time::Duration,
    /// A failing or slow extender is skipped (the cycle goes on) instead of failing the pod.
    pub ignorable: bool,
    /// The extender binds pods instead of the store's Bind.
    pub bind: bool,
    /// Filter is called (`filterVerb` set).
    pub filter: bool,
    /// Prioritize is called (`prioritizeVerb` set and weight > 0).
    pub prioritize: bool,
    /// Send node names only, not whole Node objects.
    pub node_cache_capable: bool,
    /// Only pods requesting one of these resources go to the extender (empty: every pod).
    pub managed_resources: Vec<String>,
}

impl ExtenderConfig {
    /// Is the extender interested in this pod (upstream's `IsInterested`)?
    pub fn is_interested(&self, pod: &v1::Pod) -> bool {
        if self.managed_resources.is_empty() {
            return true;
        }
        let spec = crate::snapshot::pod_spec(pod);
        spec.containers
            .iter()
            .chain(spec.init_containers.iter())
            .filter_map(|c| c.resources.as_ref())
            .any(|r| {
                self.managed_resources
                    .iter()
                    .any(|m| r.requests.contains_key(m) || r.limits.contains_key(m))
            })
    }
}

/// A scheduling profile: the plugins per extension point, in order, with score weights.
/// A plugin's PreFilter runs when it is in `filters`, its PreScore when it is in `scores`.
#[derive(Clone)]
pub struct Profile {
    pub scheduler_name: String,
    pub filters: Vec<Arc<dyn Plugin>>,
    pub post_filters: Vec<Arc<dyn Plugin>>,
    pub scores: Vec<(Arc<dyn Plugin>, i64)>,
    /// `percentageOfNodesToScore`; None or 0 is adaptive.
    pub percentage_of_nodes_to_score: Option<i64>,
    pub extenders: Vec<ExtenderConfig>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("scheduler_name", &self.scheduler_name)
            .field(
                "filters",
                &self.filters.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field(
                "post_filters",
                &self
                    .post_filters
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>(),
            )
            .field(
                "scores",
                &self
                    .scores
                    .iter()
                    .map(|(p, w)| (p.name(), *w))
                    .collect::<Vec<_>>(),
            )
            .field("extenders", &self.extenders)
            .finish()
    }
}

impl Profile {
    /// Build from plugin names with default arguments; one instance per name, shared between
    /// extension points.
    pub fn new(
        scheduler_name: &str,
        registry: &Registry,
        filters: &[&str],
        scores: &[(&str, i64)],
    ) -> Result<Profile, String> {
        Profile::build(
            scheduler_name,
            registry,
            filters,
            &[],
            scores,
            &BTreeMap::new(),
        )
    }

    /// Build from plugin names and per-plugin arguments.
    pub fn build(
        scheduler_name: &str,
        registry: &Registry,
        filters: &[&str],
        post_filters: &[&str],
        scores: &[(&str, i64)],
        args: &BTreeMap<String, PluginArgs>,
    ) -> Result<Profile, String> {
        let mut built: BTreeMap<&str, Arc<dyn Plugin>> = BTreeMap::new();
        let null = PluginArgs::Null;
        let mut get = |name| -> Result<Arc<dyn Plugin>, String> {
            if let Some(p) = built.get(name) {
                return Ok(Arc::clone(p));
            }
            let p = registry
                .build_with(name, args.get(name).unwrap_or(&null))
                .ok_or_else(|| format!("plugin {name:?} is not registered"))??;
            built.insert(name, Arc::clone(&p));
            Ok(p)
        };
        let filters = filters.iter().map(|n| get(n)).collect::<Result<_, _>>()?;
        let post_filters = post_filters
            .iter()
            .map(|n| get(n))
            .collect::<Result<_, _>>()?;
        let scores = scores
            .iter()
            .map(|(n, w)| {
                if *w <= 0 {
                    return Err(format!("score plugin {n:?} needs a positive weight"));
                }
                Ok((get(n)?, *w))
            })
            .collect::<Result<_, _>>()?;
        Ok(Profile {
            scheduler_name: scheduler_name.to_string(),
            filters,
            post_filters,
            scores,
            percentage_of_nodes_to_score: None,
            extenders: vec![],
        })
    }

    /// `default-scheduler`: kube-scheduler's default plugins (those coxswain has) and weights.
    pub fn default_profile() -> Profile {
        Profile::build(
            DEFAULT_SCHEDULER_NAME,
            &crate::plugins::in_tree_registry(),
            crate::plugins::DEFAULT_FILTERS,
            crate::plugins::DEFAULT_POST_FILTERS,
            crate::plugins::DEFAULT_SCORES,
            &BTreeMap::new(),
        )
        .expect("the default profile names registered plugins")
    }

    /// The cluster events that may help a pod rejected by `plugins` (every event when an
    /// extender took part or a plugin is unknown).
    pub fn events_for(&self, plugins: &BTreeSet<String>) -> BTreeSet<ClusterEvent> {
        let mut out = BTreeSet::new();
        if !self.extenders.is_empty() {
            out.extend(ClusterEvent::ALL.iter().copied());
            return out;
        }
        for name in plugins {
            match self.filters.iter().find(|p| p.name() == name) {
                Some(p) => out.extend(p.events().iter().copied()),
                None => out.extend(ClusterEvent::ALL.iter().copied()),
            }
        }
        out
    }
}
