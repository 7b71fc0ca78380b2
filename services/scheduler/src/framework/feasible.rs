//! The cycle's first half (steps 1–3 of [`super`]'s docs): PreFilter, the Filter loop over the
//! nodes from a rotating start until enough are feasible, the rejected nodes' diagnosis,
//! PostFilter, and the cycle's results and errors ([`FitError`], [`ScheduleError`]).
use super::*;

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
        if obs.node_sampled(i) {
            for (name, f) in &active {
                let t = obs.plugin_start();
                let r = f.filter(&state, pod, ni);
                obs.plugin(name, Point::Filter, r.code, t);
                if !r.is_success() {
                    s = r.with_plugin(*name);
                    rejecter = Some(name);
                    break;
                }
            }
        } else if let Some((name, r)) = active
            .iter()
            .find_map(|&(name, f)| f.rejection(&state, pod, ni).map(|r| (name, r)))
        {
            // The fast path: no status for the filters that pass the node.
            s = r.with_plugin(name);
            rejecter = Some(name);
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
