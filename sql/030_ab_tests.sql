-- A/B test results: one row per experiment and arm, replaced by each analysis.
CREATE SCHEMA IF NOT EXISTS reco;

CREATE TABLE IF NOT EXISTS reco.ab_test_results (
    experiment    TEXT             NOT NULL,
    arm           TEXT             NOT NULL,
    is_control    BOOLEAN          NOT NULL,
    users         BIGINT           NOT NULL,
    impressions   BIGINT           NOT NULL,
    clicks        BIGINT           NOT NULL,
    ctr           DOUBLE PRECISION,           -- clicks / impressions
    ctr_low       DOUBLE PRECISION,           -- 95% Wilson interval
    ctr_high      DOUBLE PRECISION,
    abs_lift      DOUBLE PRECISION,           -- ctr - control ctr (treatment arms only)
    abs_lift_low  DOUBLE PRECISION,           -- 95% Newcombe interval of the difference
    abs_lift_high DOUBLE PRECISION,
    rel_lift      DOUBLE PRECISION,           -- abs_lift / control ctr
    rel_lift_low  DOUBLE PRECISION,
    rel_lift_high DOUBLE PRECISION,
    p_value       DOUBLE PRECISION,           -- two-sided two-proportion z-test
    significant   BOOLEAN,                    -- p_value < 0.05
    mde_abs       DOUBLE PRECISION,           -- minimum detectable effect, alpha .05 power .8
    mde_rel       DOUBLE PRECISION,
    impact        JSONB,                      -- business impact estimate with its inputs
    rejected      JSONB            NOT NULL DEFAULT '{}'::jsonb,  -- rows not used, by reason
    run_id        TEXT             NOT NULL,
    analysed_at   TIMESTAMPTZ      NOT NULL DEFAULT now(),
    CONSTRAINT ab_test_results_pkey PRIMARY KEY (experiment, arm)
);
-- Our description, set once (a DBA's own comment is kept).
DO $$
BEGIN
    IF obj_description('reco.ab_test_results'::regclass, 'pg_class') IS NULL THEN
        COMMENT ON TABLE reco.ab_test_results IS
            'Per-arm CTR, lift vs control with 95% intervals, z-test p-value and MDE; see README "A/B test analysis".';
    END IF;
END
$$;
