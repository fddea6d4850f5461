-- name: lock
-- Two analyses of the same experiment never interleave their rows.
SELECT pg_advisory_xact_lock(hashtext('reco.ab_test_results:' || %(experiment)s));

-- name: delete_experiment
DELETE FROM reco.ab_test_results WHERE experiment = %(experiment)s;

-- name: insert
INSERT INTO reco.ab_test_results
    (experiment, arm, is_control, users, impressions, clicks, ctr, ctr_low, ctr_high,
     abs_lift, abs_lift_low, abs_lift_high, rel_lift, rel_lift_low, rel_lift_high,
     p_value, significant, mde_abs, mde_rel, impact, rejected, run_id)
VALUES
    (%(experiment)s, %(arm)s, %(is_control)s, %(users)s, %(impressions)s, %(clicks)s, %(ctr)s,
     %(ctr_low)s, %(ctr_high)s, %(abs_lift)s, %(abs_lift_low)s, %(abs_lift_high)s,
     %(rel_lift)s, %(rel_lift_low)s, %(rel_lift_high)s, %(p_value)s, %(significant)s,
     %(mde_abs)s, %(mde_rel)s, %(impact)s::jsonb, %(rejected)s::jsonb, %(run_id)s);

-- name: for_experiment
SELECT experiment, arm, is_control, users, impressions, clicks, ctr, ctr_low, ctr_high,
       abs_lift, abs_lift_low, abs_lift_high, rel_lift, rel_lift_low, rel_lift_high,
       p_value, significant, mde_abs, mde_rel, impact, rejected, run_id, analysed_at
FROM reco.ab_test_results
WHERE experiment = COALESCE(
    %(experiment)s,
    (SELECT experiment FROM reco.ab_test_results ORDER BY analysed_at DESC LIMIT 1))
ORDER BY is_control DESC, arm;
