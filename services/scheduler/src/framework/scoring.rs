//! The cycle's second half (steps 4–6 of [`super`]'s docs): PreScore, Score, normalize and
//! weigh over the feasible nodes, select the host, and the whole cycle
//! ([`schedule_one_at`], [`schedule_one_observed`]).
use super::*;

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
    let (totals, plugins, normalized) =
        score_infos(profile, state, pod, snapshot, &infos, breakdown, obs);
    let n = infos.len();
    // The names: moved out of the normalized list when one was built (no second clone).
    let names: Vec<Arc<str>> = if normalized.len() == n {
        normalized.into_iter().map(|ns| ns.name).collect()
    } else {
        infos.iter().map(|ni| ni.name_arc()).collect()
    };
    let mut plugins = plugins.into_iter();
    names
        .into_iter()
        .zip(totals)
        .map(|(node, total)| NodeScores {
            node,
            total,
            plugins: plugins.next().unwrap_or_default(),
        })
        .collect()
}

/// Only the totals of [`score_nodes_observed`] (no breakdown), in `feasible`'s order: what a
/// cycle selecting a host needs ([`select_best`]), without a named score per node.
pub fn score_totals_observed(
    profile: &Profile,
    state: &mut CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    feasible: &[usize],
    obs: &mut Observer,
) -> Vec<i64> {
    let infos: Vec<&NodeInfo> = feasible.iter().map(|&i| &snapshot.nodes[i]).collect();
    score_infos(profile, state, pod, snapshot, &infos, false, obs).0
}

/// The scoring itself: the totals, the breakdown per node (empty unless `breakdown`), and the
/// last normalizing plugin's named list (empty when no plugin normalized).
#[allow(clippy::type_complexity)]
fn score_infos(
    profile: &Profile,
    state: &mut CycleState,
    pod: &v1::Pod,
    snapshot: &Snapshot,
    infos: &[&NodeInfo],
    breakdown: bool,
    obs: &mut Observer,
) -> (Vec<i64>, Vec<Vec<PluginScore>>, Vec<NodeScore>) {
    let pre_score_start = obs.start();
    for (p, _) in &profile.scores {
        if let Some(ps) = p.as_pre_score() {
            let t = obs.plugin_start();
            let s = ps.pre_score(state, pod, snapshot, infos);
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
    obs.point(Point::Score, Code::Success, score_start);
    (totals, plugins, normalized)
}

/// The highest total; ties broken uniformly at random, as kube-scheduler's `selectHost`.
pub fn select_host(scores: &[NodeScores]) -> usize {
    any_max(scores.iter().map(|s| s.total), &mut rand::rng())
}

/// [`select_host`] over the totals alone ([`score_totals_observed`]).
pub fn select_best(totals: &[i64]) -> usize {
    any_max(totals.iter().copied(), &mut rand::rng())
}

/// The index of one of the highest values, each of them equally likely (0 when there are none):
/// kube-scheduler's `selectHost` keeps a count of the nodes with the highest score seen so far
/// and takes the n-th of them with probability 1/n (reservoir sampling), so equal nodes share
/// the pods instead of the first in evaluation order taking every tie.
pub(crate) fn any_max(totals: impl Iterator<Item = i64>, rng: &mut impl rand::Rng) -> usize {
    let (mut best, mut best_total, mut ties) = (0, i64::MIN, 0u32);
    for (i, t) in totals.enumerate() {
        if i == 0 || t > best_total {
            (best, best_total, ties) = (i, t, 1);
        } else if t == best_total {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
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
/// (the node; `feasible` and `scores` empty: the host is selected on the totals alone), as the
/// scheduler's loop runs it.
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
    if !breakdown {
        let totals = score_totals_observed(profile, &mut state, pod, snapshot, &feasible, obs);
        return Ok(ScheduleResult {
            node: snapshot.nodes[feasible[select_best(&totals)]]
                .name()
                .to_string(),
            feasible: feasible_names,
            evaluated,
            rejected,
            scores: vec![],
        });
    }
    let scores = score_nodes_observed(profile, &mut state, pod, snapshot, &feasible, true, obs);
    let best = select_host(&scores);
    Ok(ScheduleResult {
        node: scores[best].node.to_string(),
        feasible: feasible_names,
        evaluated,
        rejected,
        scores,
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::any_max;

    #[test]
    fn a_single_highest_total_always_wins() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..100 {
            assert_eq!(any_max([3, 9, 2, 8].into_iter(), &mut rng), 1);
        }
        assert_eq!(any_max(std::iter::empty(), &mut rng), 0);
        assert_eq!(any_max([i64::MIN].into_iter(), &mut rng), 0);
    }

    #[test]
    fn ties_are_shared_evenly_as_kube_schedulers_select_host() {
        // Three nodes tie for the highest total: each is picked about a third of the time, never
        // a lower one (upstream's reservoir sampling over the highest scores).
        let mut rng = StdRng::seed_from_u64(42);
        let mut picks = [0u32; 5];
        for _ in 0..30_000 {
            picks[any_max([5, 7, 1, 7, 7].into_iter(), &mut rng)] += 1;
        }
        assert_eq!((picks[0], picks[2]), (0, 0), "{picks:?}");
        for i in [1, 3, 4] {
            assert!((9_000..11_000).contains(&picks[i]), "{picks:?}");
        }
    }
}
