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
//! 6. The highest total wins. Kubernetes breaks ties at random (reservoir sampling); here the
//!    first tied node in evaluation order wins, so results are deterministic.
use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use coxswain_api::v1;

use crate::metrics::{Observer, Point};
use crate::nodeset::NodeSet;
use crate::snapshot::{pod_name, pod_namespace, NodeInfo, Snapshot};

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

/// How many feasible nodes to look for among `num_all_nodes` (kube-scheduler's
/// `numFeasibleNodesToFind`): every node below 100 nodes or at 100%; otherwise `percentage`
/// (adaptive when None or 0: `50 - nodes/125`, at least 5) of the nodes, but at least 100.
pub fn num_feasible_nodes_to_find(num_all_nodes: usize, percentage: Option<i64>) -> usize {
    let n = num_all_nodes as i64;
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut pct = percentage.unwrap_or(0);
    if pct >= 100 {
        return num_all_nodes;
    }
    if pct <= 0 {
        pct = (50 - n / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    ((n * pct / 100) as usize).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// One plugin's contribution to a node's score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginScore {
    /// A plugin's name, or `extender <name>` for an extender's Prioritize.
    pub plugin: std::borrow::Cow<'static, str>,
    pub raw: i64,
    pub normalized: i64,
    pub weight: i64,
    pub weighted: i64,
}

/// A feasible node's scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScores {
    pub node: Arc<str>,
    pub total: i64,
    pub plugins: Vec<PluginScore>,
}

/// A successful cycle.
#[derive(Debug, Clone)]
pub struct ScheduleResult {
    /// The chosen node.
    pub node: String,
    /// Feasible nodes, in evaluation order.
    pub feasible: Vec<Arc<str>>,
    /// Nodes filtered (feasible or not).
    pub evaluated: usize,
    /// The evaluated nodes that were rejected (indices into the snapshot's nodes), with the
    /// rejecting plugin's status (empty without `breakdown`).
    pub rejected: Vec<(usize, Status)>,
    /// Per feasible node (evaluation order); empty when only one node was feasible.
    pub scores: Vec<NodeScores>,
}

/// No node fits. Returned boxed (it is large and the error path is cold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// `namespace/name` of the pod.
    pub pod: String,
    pub num_all_nodes: usize,
    /// Each rejected node's status.
    pub diagnosis: BTreeMap<String, Status>,
    /// Set when a PreFilter plugin rejected the pod outright.
    pub pre_filter_msg: String,
    /// From the PostFilter plugins (e.g. preemption).
    pub post_filter_msg: String,
    /// Plugins that rejected some node.
    pub unschedulable_plugins: BTreeSet<String>,
}

impl fmt::Display for FitError {
    /// kube-scheduler's aggregate: each reason counted over the nodes, `"<n> <reason>"`
    /// sorted as strings, joined with ", ".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_all_nodes == 0 {
            return write!(f, "no nodes available to schedule pods");
        }
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        if !self.pre_filter_msg.is_empty() {
            // A PreFilter rejection put the same status on every node: say it once.
            write!(f, " {}.", self.pre_filter_msg)?;
        } else {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for s in self.diagnosis.values() {
                for r in &s.reasons {
                    *counts.entry(&**r).or_default() += 1;
                }
            }
            let mut lines: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
            lines.sort();
            if !lines.is_empty() {
                write!(f, " {}.", lines.join(", "))?;
            }
        }
        if !self.post_filter_msg.is_empty() {
            write!(f, " {}.", self.post_filter_msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Why a cycle did not produce a node.
#[derive(Debug, Clone)]
pub enum ScheduleError {
    /// No node fits (the pod goes to the unschedulable queue).
    Unschedulable(Box<FitError>),
    /// A plugin returned an `Error` status: the cycle is aborted (upstream's
    /// `status.AsError()`), the pod is retried with back-off.
    Error(String),
}

impl ScheduleError {
    /// The [`FitError`] when no node fits.
    pub fn fit(&self) -> Option<&FitError> {
        match self {
            ScheduleError::Unschedulable(f) => Some(f),
            ScheduleError::Error(_) => None,
        }
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::Unschedulable(e) => e.fmt(f),
            ScheduleError::Error(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ScheduleError {}

/// Runs every filter plugin of the profile on the node, stopping at the first non-success.
pub fn run_filters(
    profile: &Profile,
    state: &CycleState,
    pod: &v1::Pod,
    node: &NodeInfo,
) -> Status {
    for p in &profile.filters {
        if state.skip_filter.contains(p.name()) {
            continue;
        }
        if let Some(f) = p.as_filter() {
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
    }
    Status::success()
}

/// One scheduling cycle starting at node 0 (see the module docs).
pub fn schedule_one(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &v1::Pod,
) -> Result<ScheduleResult, ScheduleError> {
    schedule_one_at(profile, snapshot, pod, &mut 0)
}

/// The outcome of PreFilter + Filter: the cycle state, the feasible nodes (indices into
/// `snapshot.nodes`, in evaluation order) and the rejected nodes' statuses.
pub struct Filtered {
    pub state: CycleState,
    pub feasible: Vec<usize>,
    pub evaluated: usize,
    /// The plugins that rejected some node (diagnosis filled by [`Filtered::diagnose`]).
    pub fit_error: FitError,
    /// Rejected nodes (indices into the snapshot's nodes) and the filter that rejected each.
    /// Only that much is kept per node in the hot loop; the statuses are rebuilt by
    /// [`Filtered::rejected`] when needed (the pod turns out unschedulable, or a caller wants
    /// them): filters are pure functions of the cycle state, the pod and the node, so
    /// running the rejecting filter again gives the same status.
    pub(crate) rejections: Vec<(usize, &'static str)>,
    /// Nodes the loop skipped because a filter's [`Filter::candidates`] left them out: their
    /// rejecting filter is found only when needed ([`resolve_gated`]).
    pub(crate) gated: Option<Gated>,
}

/// The nodes skipped by the filter loop through [`Filter::candidates`]: those among the
/// evaluated positions `start..start + evaluated` (rotating) that are not in `set`.
pub struct Gated {
    set: NodeSet,
    start: usize,
    evaluated: usize,
}

/// Find the filter that rejects each node the loop skipped (the first, in the profile's
/// order, as if every filter had run on it), add those nodes to `rejections` in evaluation
/// order and their plugins to `err.unschedulable_plugins`. Idempotent (`gated` is taken).
pub(crate) fn resolve_gated(
    profile: &Profile,
    state: &CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    gated: &mut Option<Gated>,
    rejections: &mut Vec<(usize, &'static str)>,
    err: &mut FitError,
) {
    let Some(g) = gated.take() else { return };
    let n = snapshot.len();
    if n == 0 {
        return;
    }
    let active = active_filters(profile, state);
    let mut all = Vec::with_capacity(g.evaluated);
    let mut known = rejections.iter().peekable();
    for i in 0..g.evaluated {
        let idx = (g.start + i) % n;
        if g.set.contains(idx) {
            // Evaluated in the loop: its rejection (if any) was recorded there, in order.
            if let Some(&&r) = known.peek() {
                if r.0 == idx {
                    all.push(r);
                    known.next();
                }
            }
            continue;
        }
        let ni = &snapshot.nodes[idx];
        let plugin = active
            .iter()
            .find(|(_, f)| !f.filter(state, pod, ni).is_success())
            .map_or("", |(name, _)| *name);
        if plugin.is_empty() {
            // Cannot happen when `candidates` agrees with `filter`; keep the node out anyway.
            continue;
        }
        err.unschedulable_plugins.insert(plugin.to_string());
        all.push((idx, plugin));
    }
    all.extend(known.copied());
    *rejections = all;
}

/// The filters that run this cycle (not skipped by their PreFilter), in the profile's order.
fn active_filters<'p>(
    profile: &'p Profile,
    state: &CycleState,
) -> Vec<(&'static str, &'p dyn Filter)> {
    profile
        .filters
        .iter()
        .filter(|p| !state.skip_filter.contains(p.name()))
        .filter_map(|p| Some((p.name(), p.as_filter()?)))
        .collect()
}

/// The statuses of rejected nodes, rebuilt by running each node's rejecting filter again
/// (see [`Filtered::rejected`]).
pub(crate) fn rejected_statuses(
    profile: &Profile,
    state: &CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    rejections: &[(usize, &'static str)],
) -> Vec<(usize, Status)> {
    rejections
        .iter()
        .map(|&(i, plugin)| {
            let s = profile
                .filters
                .iter()
                .find(|p| p.name() == plugin)
                .and_then(|p| p.as_filter())
                .map(|f| f.filter(state, pod, &snapshot.nodes[i]))
                .unwrap_or_else(|| Status::error("filter plugin vanished"));
            (i, s.with_plugin(plugin))
        })
        .collect()
}

impl Filtered {
    /// The rejected nodes (indices into the snapshot's nodes) and why, in evaluation order.
    /// Call before scoring (PreScore may add to the cycle state).
    pub fn rejected(
        &self,
        profile: &Profile,
        pod: &v1::Pod,
        snapshot: &Snapshot,
    ) -> Vec<(usize, Status)> {
        if self.gated.is_none() {
            return rejected_statuses(profile, &self.state, pod, snapshot, &self.rejections);
        }
        let mut rejections = self.rejections.clone();
        let mut gated = self.gated.as_ref().map(|g| Gated {
            set: g.set.clone(),
            start: g.start,
            evaluated: g.evaluated,
        });
        let mut err = new_fit_error(pod, 0);
        resolve_gated(
            profile,
            &self.state,
            pod,
            snapshot,
            &mut gated,
            &mut rejections,
            &mut err,
        );
        rejected_statuses(profile, &self.state, pod, snapshot, &rejections)
    }

    /// Put the rejected nodes into `fit_error.diagnosis` (by node name).
    pub fn diagnose(&mut self, profile: &Profile, pod: &v1::Pod, snapshot: &Snapshot) {
        for (i, s) in self.rejected(profile, pod, snapshot) {
            self.fit_error
                .diagnosis
                .insert(snapshot.nodes[i].name().to_string(), s);
        }
        self.rejections.clear();
        self.gated = None;
    }
}

fn new_fit_error(pod: &v1::Pod, n: usize) -> FitError {
    FitError {
        pod: format!("{}/{}", pod_namespace(pod), pod_name(pod)),
        num_all_nodes: n,
        diagnosis: BTreeMap::new(),
        pre_filter_msg: String::new(),
        post_filter_msg: String::new(),
        unschedulable_plugins: BTreeSet::new(),
    }
}

/// PreFilter, then Filter from `*next_start_node_index` until enough nodes are feasible
/// ([`num_feasible_nodes_to_find`]); the index is advanced past the nodes evaluated. An `Error`
/// status from any plugin aborts the cycle. `Err(Unschedulable)` only for a PreFilter
/// rejection or an empty cluster; "no feasible node" is `Ok` with an empty `feasible`.
pub fn find_feasible(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &v1::Pod,
    next_start_node_index: &mut usize,
) -> Result<Filtered, ScheduleError> {
    find_feasible_observed(
        profile,
        snapshot,
        pod,
        next_start_node_index,
        &mut Observer::off(),
    )
}

/// As [`find_feasible`], recording the PreFilter extension point and (sampled) each
/// PreFilter and Filter call into `obs`.
pub fn find_feasible_observed(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &v1::Pod,
    next_start_node_index: &mut usize,
    obs: &mut Observer,
) -> Result<Filtered, ScheduleError> {
    let n = snapshot.len();
    let mut err = new_fit_error(pod, n);
    if n == 0 {
        return Err(ScheduleError::Unschedulable(Box::new(err)));
    }
    let mut state = CycleState::new();
    let pre_filter_start = obs.start();
    for p in &profile.filters {
        let Some(pf) = p.as_pre_filter() else {
            continue;
        };
        let t = obs.plugin_start();
        let s = pf.pre_filter(&mut state, pod, snapshot);
        obs.plugin(p.name(), Point::PreFilter, s.code, t);
        if !matches!(s.code, Code::Success | Code::Skip) {
            obs.point(Point::PreFilter, s.code, pre_filter_start);
        }
        match s.code {
            Code::Success => {}
            Code::Skip => {
                state.skip_filter.insert(p.name());
            }
            Code::Error => {
                return Err(ScheduleError::Error(format!(
                    "running PreFilter plugin {:?}: {}",
                    p.name(),
                    s.message()
                )))
            }
            Code::Unschedulable | Code::UnschedulableAndUnresolvable => {
                let s = s.with_plugin(p.name());
                err.pre_filter_msg = s.message();
                err.unschedulable_plugins.insert(p.name().to_string());
                for ni in &snapshot.nodes {
                    err.diagnosis.insert(ni.name().to_string(), s.clone());
                }
                return Err(ScheduleError::Unschedulable(Box::new(err)));
            }
        }
    }
    obs.point(Point::PreFilter, Code::Success, pre_filter_start);
    let to_find = num_feasible_nodes_to_find(n, profile.percentage_of_nodes_to_score);
    let mut feasible = Vec::with_capacity(to_find.min(n));
    let mut rejections = Vec::new();
    let mut seen: Vec<&'static str> = Vec::new();
    let start = *next_start_node_index % n;
    // The filters that run this cycle, resolved once.
    let all_active = active_filters(profile, &state);
    // Filters that named exactly the nodes they pass: the nodes outside the intersection are
    // skipped (rejected, by them or by an earlier filter: found later if needed), and those
    // filters need not run on the nodes inside.
    let mut gate: Option<Cow<'_, NodeSet>> = None;
    let mut active = Vec::with_capacity(all_active.len());
    for &(name, f) in &all_active {
        match f.candidates(&state).filter(|c| c.len() == n) {
            Some(c) => match &mut gate {
                None => gate = Some(Cow::Borrowed(c)),
                Some(g) => g.to_mut().intersect(c),
            },
            None => active.push((name, f)),
        }
    }
    let mut i = 0;
    while i < n {
        if feasible.len() >= to_find {
            break;
        }
        if let Some(g) = &gate {
            if !g.contains((start + i) % n) {
                i = g.next_in_rotation(start, i);
                continue;
            }
        }
        let idx = (start + i) % n;
        let ni = &snapshot.nodes[idx];
        i += 1;
        let mut s = Status::success();
        let mut rejecter: Option<&'static str> = None;
        let timed = obs.node_sampled(i);
        for (name, f) in &active {
            let t = if timed { obs.plugin_start() } else { None };
            let r = f.filter(&state, pod, ni);
            obs.plugin(name, Point::Filter, r.code, t);
            if !r.is_success() {
                s = r.with_plugin(*name);
                rejecter = Some(name);
                break;
            }
        }
        match s.code {
            Code::Success => feasible.push(idx),
            Code::Error => {
                return Err(ScheduleError::Error(format!(
                    "running Filter plugin {:?} on node {:?}: {}",
                    s.plugin,
                    ni.name(),
                    s.message()
                )))
            }
            _ => {
                let plugin = rejecter.expect("set with the status");
                // Plugin names are static: remember the ones recorded by pointer rather than
                // comparing strings in the set for every rejected node.
                if !seen.iter().any(|k| std::ptr::eq(*k, plugin)) {
                    seen.push(plugin);
                    if !err.unschedulable_plugins.contains(plugin) {
                        err.unschedulable_plugins.insert(plugin.to_string());
                    }
                }
                rejections.push((idx, plugin));
            }
        }
    }
    let evaluated = i;
    *next_start_node_index = (start + evaluated) % n;
    let mut gated = gate.map(|g| Gated {
        set: g.into_owned(),
        start,
        evaluated,
    });
    if feasible.is_empty() {
        resolve_gated(
            profile,
            &state,
            pod,
            snapshot,
            &mut gated,
            &mut rejections,
            &mut err,
        );
    }
    Ok(Filtered {
        state,
        feasible,
        evaluated,
        fit_error: err,
        rejections,
        gated,
    })
}

/// Runs the PostFilter plugins over a cycle with no feasible node and fills in their message
/// (upstream: the first plugin that does not return Unschedulable ends the chain).
pub fn run_post_filters(
    profile: &Profile,
    state: &CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    err: &mut FitError,
) {
    run_post_filters_observed(profile, state, pod, snapshot, err, &mut Observer::off())
}

/// As [`run_post_filters`], recording the PostFilter extension point (its status: the last
/// plugin's code), each call when sampled, and DefaultPreemption's runs as preemption attempts.
pub fn run_post_filters_observed(
    profile: &Profile,
    state: &CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    err: &mut FitError,
    obs: &mut Observer,
) {
    if profile.post_filters.is_empty() {
        return;
    }
    let start = obs.start();
    let mut code = Code::Unschedulable;
    for p in &profile.post_filters {
        if let Some(pf) = p.as_post_filter() {
            let t = obs.plugin_start();
            let r = pf.post_filter(state, pod, snapshot, &err.diagnosis);
            obs.plugin(p.name(), Point::PostFilter, r.status.code, t);
            if p.name() == crate::plugins::default_preemption::NAME {
                obs.preemption_attempt();
            }
            err.post_filter_msg = r.status.message();
            code = r.status.code;
            if r.status.code != Code::Unschedulable {
                break;
            }
        }
    }
    obs.point(Point::PostFilter, code, start);
}

/// PreScore, Score, normalize and weigh over the feasible nodes (indices into
/// `snapshot.nodes`), with each plugin's contribution per node.
pub fn score_nodes(
    profile: &Profile,
    state: &mut CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    feasible: &[usize],
) -> Vec<NodeScores> {
    score_nodes_with(profile, state, pod, snapshot, feasible, true)
}

/// As [`score_nodes`]; with `breakdown` false only the totals are kept (`plugins` stays
/// empty), which is all a scheduling cycle needs to select a host: no per-node allocation.
pub fn score_nodes_with(
    profile: &Profile,
    state: &mut CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    feasible: &[usize],
    breakdown: bool,
) -> Vec<NodeScores> {
    score_nodes_observed(
        profile,
        state,
        pod,
        snapshot,
        feasible,
        breakdown,
        &mut Observer::off(),
    )
}

/// As [`score_nodes_with`], recording the PreScore and Score extension points and, when
/// sampled, each PreScore, Score and normalize call.
pub fn score_nodes_observed(
    profile: &Profile,
    state: &mut CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    feasible: &[usize],
    breakdown: bool,
    obs: &mut Observer,
) -> Vec<NodeScores> {
    let infos: Vec<&NodeInfo> = feasible.iter().map(|&i| &snapshot.nodes[i]).collect();
    let pre_score_start = obs.start();
    for (p, _) in &profile.scores {
        if let Some(ps) = p.as_pre_score() {
            let t = obs.plugin_start();
            let s = ps.pre_score(state, pod, snapshot, &infos);
            obs.plugin(p.name(), Point::PreScore, s.code, t);
            if s.is_skip() {
                state.skip_score.insert(p.name());
            }
        }
    }
    obs.point(Point::PreScore, Code::Success, pre_score_start);
    let score_start = obs.start();
    // Totals and one plugin's raw scores as plain integers; the named lists a normalizing
    // plugin needs are built once per cycle, and only when such a plugin runs. A plugin whose
    // PreScore skipped adds 0 to every node and is not visited (unless the breakdown is
    // asked for).
    let n = infos.len();
    let mut totals = vec![0i64; n];
    let mut raw = vec![0i64; n];
    let mut normalized: Vec<NodeScore> = Vec::new();
    let mut plugins: Vec<Vec<PluginScore>> = if breakdown {
        (0..n)
            .map(|_| Vec::with_capacity(profile.scores.len()))
            .collect()
    } else {
        Vec::new()
    };
    for (p, weight) in &profile.scores {
        let Some(sp) = p.as_score() else { continue };
        let skipped = state.skip_score.contains(p.name());
        if skipped && !breakdown {
            continue;
        }
        let mut ext = None;
        if skipped {
            raw.fill(0);
        } else {
            let mut timed = 0;
            while obs.node_sampled(timed) && timed < n {
                let t = obs.plugin_start();
                raw[timed] = sp.score(state, pod, infos[timed]);
                obs.plugin(p.name(), Point::Score, Code::Success, t);
                timed += 1;
            }
            sp.score_all(state, pod, &infos[timed..], &mut raw[timed..]);
            ext = sp.score_extensions();
        }
        let norms: &[i64] = match ext {
            Some(ext) => {
                if normalized.len() != n {
                    normalized = infos
                        .iter()
                        .map(|ni| NodeScore {
                            name: ni.name_arc(),
                            score: 0,
                        })
                        .collect();
                }
                for (ns, r) in normalized.iter_mut().zip(&raw) {
                    ns.score = *r;
                }
                let t = obs.plugin_start();
                ext.normalize(state, pod, &mut normalized);
                obs.plugin(p.name(), Point::ScoreExtensionNormalize, Code::Success, t);
                // The normalized scores go back into `raw`'s place only after the breakdown
                // read the raw ones.
                if breakdown {
                    for (i, row) in plugins.iter_mut().enumerate() {
                        let norm = normalized[i].score.clamp(MIN_NODE_SCORE, MAX_NODE_SCORE);
                        row.push(PluginScore {
                            plugin: Cow::Borrowed(p.name()),
                            raw: raw[i],
                            normalized: norm,
                            weight: *weight,
                            weighted: norm * weight,
                        });
                    }
                }
                for (r, ns) in raw.iter_mut().zip(&normalized) {
                    *r = ns.score;
                }
                &raw
            }
            None => {
                if breakdown {
                    for (i, row) in plugins.iter_mut().enumerate() {
                        let norm = raw[i].clamp(MIN_NODE_SCORE, MAX_NODE_SCORE);
                        row.push(PluginScore {
                            plugin: Cow::Borrowed(p.name()),
                            raw: raw[i],
                            normalized: norm,
                            weight: *weight,
                            weighted: norm * weight,
                        });
                    }
                }
                &raw
            }
        };
        for (t, s) in totals.iter_mut().zip(norms) {
            *t += s.clamp(&MIN_NODE_SCORE, &MAX_NODE_SCORE) * weight;
        }
    }
    // The names: moved out of the normalized list when one was built (no second clone).
    let names: Vec<Arc<str>> = if normalized.len() == n {
        normalized.into_iter().map(|ns| ns.name).collect()
    } else {
        infos.iter().map(|ni| ni.name_arc()).collect()
    };
    let mut plugins = plugins.into_iter();
    let scores = names
        .into_iter()
        .zip(totals)
        .map(|(node, total)| NodeScores {
            node,
            total,
            plugins: plugins.next().unwrap_or_default(),
        })
        .collect();
    obs.point(Point::Score, Code::Success, score_start);
    scores
}

/// The highest total; the first in evaluation order on ties.
pub fn select_host(scores: &[NodeScores]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if s.total > scores[best].total {
            best = i;
        }
    }
    best
}

/// One scheduling cycle whose filtering starts at `*next_start_node_index`, which is advanced
/// past the nodes evaluated (kube-scheduler's `nextStartNodeIndex`, so successive cycles over
/// large clusters spread their evaluation).
pub fn schedule_one_at(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &v1::Pod,
    next_start_node_index: &mut usize,
) -> Result<ScheduleResult, ScheduleError> {
    schedule_one_at_with(profile, snapshot, pod, next_start_node_index, true)
}

/// As [`schedule_one_at`]; with `breakdown` false the result carries only what binding needs
/// (the node; `feasible` empty, `scores` with totals only), as the scheduler's loop runs it.
pub fn schedule_one_at_with(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &v1::Pod,
    next_start_node_index: &mut usize,
    breakdown: bool,
) -> Result<ScheduleResult, ScheduleError> {
    schedule_one_observed(
        profile,
        snapshot,
        pod,
        next_start_node_index,
        breakdown,
        &mut Observer::off(),
    )
}

/// As [`schedule_one_at_with`], recording the framework metrics into `obs` (a new cycle:
/// [`Observer::begin_cycle`] is called here).
pub fn schedule_one_observed(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &v1::Pod,
    next_start_node_index: &mut usize,
    breakdown: bool,
    obs: &mut Observer,
) -> Result<ScheduleResult, ScheduleError> {
    obs.begin_cycle();
    let mut f = find_feasible_observed(profile, snapshot, pod, next_start_node_index, obs)?;
    if f.feasible.is_empty() {
        f.diagnose(profile, pod, snapshot);
        let mut err = f.fit_error;
        run_post_filters_observed(profile, &f.state, pod, snapshot, &mut err, obs);
        return Err(ScheduleError::Unschedulable(Box::new(err)));
    }
    let rejected = if breakdown {
        f.rejected(profile, pod, snapshot)
    } else {
        vec![]
    };
    let Filtered {
        mut state,
        feasible,
        evaluated,
        ..
    } = f;
    let feasible_names: Vec<Arc<str>> = if breakdown {
        feasible
            .iter()
            .map(|&i| snapshot.nodes[i].name_arc())
            .collect()
    } else {
        vec![]
    };
    if feasible.len() == 1 {
        return Ok(ScheduleResult {
            node: snapshot.nodes[feasible[0]].name().to_string(),
            feasible: feasible_names,
            evaluated,
            rejected,
            scores: vec![],
        });
    }
    let scores = score_nodes_observed(
        profile, &mut state, pod, snapshot, &feasible, breakdown, obs,
    );
    let best = select_host(&scores);
    Ok(ScheduleResult {
        node: scores[best].node.to_string(),
        feasible: feasible_names,
        evaluated,
        rejected,
        scores,
    })
}
