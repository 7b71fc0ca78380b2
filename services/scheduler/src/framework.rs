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
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use coxswain_api::v1;

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
    pub reasons: Vec<String>,
    pub plugin: String,
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
            reasons,
            plugin: String::new(),
        }
    }
    pub fn success() -> Status {
        Status::new(Code::Success, vec![])
    }
    pub fn skip() -> Status {
        Status::new(Code::Skip, vec![])
    }
    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status::new(Code::Unschedulable, vec![reason.into()])
    }
    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, vec![reason.into()])
    }
    pub fn error(msg: impl Into<String>) -> Status {
        Status::new(Code::Error, vec![msg.into()])
    }
    pub fn with_plugin(mut self, plugin: &str) -> Status {
        self.plugin = plugin.to_string();
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
    data: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
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
        self.data.insert(TypeId::of::<T>(), Box::new(v));
    }
    pub fn read<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.data.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

/// A plugin: a name, and the extension points it implements.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
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
    pub name: String,
    pub score: i64,
}

/// Ranks a feasible node.
pub trait Score {
    fn score(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> i64;
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

/// Builds a plugin.
pub type PluginFactory = fn() -> Arc<dyn Plugin>;

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
    pub fn build(&self, name: &str) -> Option<Arc<dyn Plugin>> {
        self.factories.get(name).map(|f| f())
    }
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }
}

/// A scheduling profile: the plugins that filter, in order, and those that score, with weights.
/// A plugin's PreFilter runs when it is in `filters`, its PreScore when it is in `scores`.
#[derive(Clone)]
pub struct Profile {
    pub scheduler_name: String,
    pub filters: Vec<Arc<dyn Plugin>>,
    pub scores: Vec<(Arc<dyn Plugin>, i64)>,
    /// `percentageOfNodesToScore`; None or 0 is adaptive.
    pub percentage_of_nodes_to_score: Option<i64>,
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
                "scores",
                &self
                    .scores
                    .iter()
                    .map(|(p, w)| (p.name(), *w))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Profile {
    /// Build from plugin names; one instance per name, shared between filters and scores.
    pub fn new(
        scheduler_name: &str,
        registry: &Registry,
        filters: &[&str],
        scores: &[(&str, i64)],
    ) -> Result<Profile, String> {
        let mut built: BTreeMap<&str, Arc<dyn Plugin>> = BTreeMap::new();
        let mut get = |name| -> Result<Arc<dyn Plugin>, String> {
            if let Some(p) = built.get(name) {
                return Ok(Arc::clone(p));
            }
            let p = registry
                .build(name)
                .ok_or_else(|| format!("plugin {name:?} is not registered"))?;
            built.insert(name, Arc::clone(&p));
            Ok(p)
        };
        let filters = filters.iter().map(|n| get(n)).collect::<Result<_, _>>()?;
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
            scores,
            percentage_of_nodes_to_score: None,
        })
    }

    /// `default-scheduler`: kube-scheduler's default plugins (those coxswain has) and weights.
    pub fn default_profile() -> Profile {
        Profile::new(
            DEFAULT_SCHEDULER_NAME,
            &crate::plugins::in_tree_registry(),
            crate::plugins::DEFAULT_FILTERS,
            crate::plugins::DEFAULT_SCORES,
        )
        .expect("the default profile names registered plugins")
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
    pub plugin: &'static str,
    pub raw: i64,
    pub normalized: i64,
    pub weighted: i64,
}

/// A feasible node's scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScores {
    pub node: String,
    pub total: i64,
    pub plugins: Vec<PluginScore>,
}

/// A successful cycle.
#[derive(Debug, Clone)]
pub struct ScheduleResult {
    /// The chosen node.
    pub node: String,
    /// Feasible nodes, in evaluation order.
    pub feasible: Vec<String>,
    /// Nodes filtered (feasible or not).
    pub evaluated: usize,
    /// Every evaluated node's filter status.
    pub per_node_filter_status: BTreeMap<String, Status>,
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
                    *counts.entry(r).or_default() += 1;
                }
            }
            let mut lines: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
            lines.sort();
            if !lines.is_empty() {
                write!(f, " {}.", lines.join(", "))?;
            }
        }
        if !self.post_filter_msg.is_empty() {
            write!(f, " {}", self.post_filter_msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

fn run_filters(profile: &Profile, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
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
) -> Result<ScheduleResult, Box<FitError>> {
    schedule_one_at(profile, snapshot, pod, &mut 0)
}

/// One scheduling cycle whose filtering starts at `*next_start_node_index`, which is advanced
/// past the nodes evaluated (kube-scheduler's `nextStartNodeIndex`, so successive cycles over
/// large clusters spread their evaluation).
pub fn schedule_one_at(
    profile: &Profile,
    snapshot: &Snapshot,
    pod: &v1::Pod,
    next_start_node_index: &mut usize,
) -> Result<ScheduleResult, Box<FitError>> {
    let n = snapshot.len();
    let mut err = FitError {
        pod: format!("{}/{}", pod_namespace(pod), pod_name(pod)),
        num_all_nodes: n,
        diagnosis: BTreeMap::new(),
        pre_filter_msg: String::new(),
        post_filter_msg: String::new(),
        unschedulable_plugins: BTreeSet::new(),
    };
    if n == 0 {
        return Err(Box::new(err));
    }
    let mut state = CycleState::new();

    // PreFilter.
    for p in &profile.filters {
        let Some(pf) = p.as_pre_filter() else {
            continue;
        };
        let s = pf.pre_filter(&mut state, pod, snapshot);
        match s.code {
            Code::Success => {}
            Code::Skip => {
                state.skip_filter.insert(p.name());
            }
            _ => {
                let s = s.with_plugin(p.name());
                err.pre_filter_msg = s.message();
                err.unschedulable_plugins.insert(p.name().to_string());
                for ni in &snapshot.nodes {
                    err.diagnosis.insert(ni.name().to_string(), s.clone());
                }
                return Err(Box::new(err));
            }
        }
    }

    // Filter, from the rotating start index, until enough nodes are feasible.
    let to_find = num_feasible_nodes_to_find(n, profile.percentage_of_nodes_to_score);
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let mut statuses = BTreeMap::new();
    let mut evaluated = 0;
    let start = *next_start_node_index % n;
    for i in 0..n {
        if feasible.len() >= to_find {
            break;
        }
        let ni = &snapshot.nodes[(start + i) % n];
        evaluated += 1;
        let s = run_filters(profile, &state, pod, ni);
        if s.is_success() {
            feasible.push(ni);
        } else {
            err.unschedulable_plugins.insert(s.plugin.clone());
            err.diagnosis.insert(ni.name().to_string(), s.clone());
        }
        statuses.insert(ni.name().to_string(), s);
    }
    *next_start_node_index = (start + evaluated) % n;

    if feasible.is_empty() {
        let mut msgs = Vec::new();
        for p in &profile.filters {
            if let Some(pf) = p.as_post_filter() {
                let r = pf.post_filter(&state, pod, snapshot, &err.diagnosis);
                if !r.status.reasons.is_empty() {
                    msgs.push(r.status.message());
                }
            }
        }
        err.post_filter_msg = msgs.join(" ");
        return Err(Box::new(err));
    }

    let feasible_names: Vec<String> = feasible.iter().map(|n| n.name().to_string()).collect();
    if feasible.len() == 1 {
        return Ok(ScheduleResult {
            node: feasible_names[0].clone(),
            feasible: feasible_names,
            evaluated,
            per_node_filter_status: statuses,
            scores: vec![],
        });
    }

    // PreScore.
    for (p, _) in &profile.scores {
        if let Some(ps) = p.as_pre_score() {
            let s = ps.pre_score(&mut state, pod, snapshot, &feasible);
            if s.is_skip() {
                state.skip_score.insert(p.name());
            }
        }
    }

    // Score, normalize, weigh.
    let mut scores: Vec<NodeScores> = feasible_names
        .iter()
        .map(|n| NodeScores {
            node: n.clone(),
            total: 0,
            plugins: vec![],
        })
        .collect();
    for (p, weight) in &profile.scores {
        let Some(sp) = p.as_score() else { continue };
        let skipped = state.skip_score.contains(p.name());
        let raw: Vec<NodeScore> = feasible
            .iter()
            .map(|ni| NodeScore {
                name: ni.name().to_string(),
                score: if skipped {
                    0
                } else {
                    sp.score(&state, pod, ni)
                },
            })
            .collect();
        let mut normalized = raw.clone();
        if !skipped {
            if let Some(ext) = sp.score_extensions() {
                ext.normalize(&state, pod, &mut normalized);
            }
        }
        for (i, ns) in scores.iter_mut().enumerate() {
            let norm = normalized[i].score.clamp(MIN_NODE_SCORE, MAX_NODE_SCORE);
            ns.plugins.push(PluginScore {
                plugin: p.name(),
                raw: raw[i].score,
                normalized: norm,
                weighted: norm * weight,
            });
            ns.total += norm * weight;
        }
    }

    // Select: the highest total, first in evaluation order on ties.
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if s.total > scores[best].total {
            best = i;
        }
    }
    Ok(ScheduleResult {
        node: scores[best].node.clone(),
        feasible: feasible_names,
        evaluated,
        per_node_filter_status: statuses,
        scores,
    })
}
