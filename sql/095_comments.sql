-- What every object in schema reco means, for whoever reads `\d+` in psql: each table,
-- view, column and function, described where it has no comment yet. A comment a DBA puts
-- on any of them instead is kept: by this file on every run (reco.describe only writes a
-- missing comment) and by the publish swap (sql/080_table_metadata.sql copies the live
-- table's comments to the table that replaces it). tests/integration/test_sql_comments.py
-- fails on an object in reco without a comment, listing it: describe new objects here.
-- (The table comments of reco.recommendations, reco.similar_items, reco.data_quality_runs
-- and reco.ab_test_results are set where those tables are created.)
CREATE SCHEMA IF NOT EXISTS reco;

-- Sets our description of one object unless it already has a comment; true when it wrote
-- it. An object that does not exist, or is not of the given kind, is an error (a typo here
-- must not pass unnoticed). A role that may not comment on an object gets a NOTICE.
-- Reads the catalogue only, and takes no lock, when the comment is already there: the
-- usual case, on every run after the first.
CREATE OR REPLACE FUNCTION reco.describe(kind text, target text, description text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp  -- regclass text is always schema-qualified here
AS $fn$
DECLARE
    part text[];
    rel regclass;
    rel_kind "char";
    col_num smallint;
    existing text;
    statement text;
BEGIN
    IF coalesce(btrim(description), '') = '' THEN
        RAISE EXCEPTION 'reco.describe(%, %): empty description', kind, target;
    END IF;
    CASE kind
    WHEN 'schema' THEN
        existing := obj_description(target::regnamespace, 'pg_namespace');
        statement := format('COMMENT ON SCHEMA %s IS %L', target::regnamespace, description);
    WHEN 'table', 'view', 'materialized view' THEN
        rel := target::regclass;
        rel_kind := (SELECT c.relkind FROM pg_class c WHERE c.oid = rel);
        IF rel_kind <> ALL (CASE kind WHEN 'table' THEN '{r,p}'::"char"[]
                                      WHEN 'view' THEN '{v}'::"char"[]
                                      ELSE '{m}'::"char"[] END) THEN
            RAISE EXCEPTION 'reco.describe: % is not a % (relkind %)', rel, kind, rel_kind;
        END IF;
        existing := obj_description(rel, 'pg_class');
        statement := format('COMMENT ON %s %s IS %L', upper(kind), rel, description);
    WHEN 'column' THEN
        part := parse_ident(target);
        IF cardinality(part) <> 3 THEN
            RAISE EXCEPTION 'reco.describe: column % is not schema.relation.column', target;
        END IF;
        rel := format('%I.%I', part[1], part[2])::regclass;
        SELECT a.attnum INTO col_num
        FROM pg_attribute a
        WHERE a.attrelid = rel AND a.attname = part[3] AND a.attnum > 0 AND NOT a.attisdropped;
        IF col_num IS NULL THEN
            RAISE EXCEPTION 'reco.describe: % has no column %', rel, quote_ident(part[3]);
        END IF;
        existing := col_description(rel, col_num);
        statement := format('COMMENT ON COLUMN %s.%I IS %L', rel, part[3], description);
    WHEN 'function' THEN
        existing := obj_description(target::regprocedure, 'pg_proc');
        statement := format('COMMENT ON FUNCTION %s IS %L', target::regprocedure, description);
    ELSE
        RAISE EXCEPTION 'reco.describe: unknown kind % (schema, table, view, materialized view, column or function)',
            kind;
    END CASE;
    IF existing IS NOT NULL THEN
        RETURN false;
    END IF;
    BEGIN
        EXECUTE statement;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'reco.describe: % % left without a description (%): its owner may run sql/095_comments.sql',
            kind, target, SQLERRM;
        RETURN false;
    END;
    RETURN true;
END
$fn$;

SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('schema', 'reco',
 'Warehouse of the batch recommendation pipeline (Airflow + Spark). Apps read the versioned contract: the v1_* views and reco.recommend(). The published tables (recommendations, similar_items, popular_items) are replaced as a whole by each publish and may be reshaped; the other tables are the pipeline''s own records (runs, timings, data quality, A/B results).'),
('function', 'reco.describe(text,text,text)',
 'describe(kind, target, description): sets the description of one object unless it already has a comment, so a DBA''s own comment is never overwritten; returns true when it wrote one. kind: schema, table, view, materialized view, column or function; target: reco, reco.t, reco.t.column or a function signature. Called for every object by sql/095_comments.sql on every run.')
) AS d (kind, target, description);

-- reco.recommendations (its table comment: sql/001_schema.sql)
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('column', 'reco.recommendations.user_id',
 'User id as in the input ratings. Every user of the run''s ratings has a list; a user absent here gets the popular list from reco.recommend().'),
('column', 'reco.recommendations.item_id',
 'The recommended item (the dataset''s item id; its title is in reco.items). Never an item the user rated, marked watched or disliked in the data of the run.'),
('column', 'reco.recommendations.rank',
 'Position in the user''s list by score, highest first: 1 = best, consecutive 1..N (N = the run''s top_n, default 10). Key with user_id.'),
('column', 'reco.recommendations.score',
 'The ranking model''s affinity of the user for the item; higher = better, finite. Unitless and model-specific: for model_version als-*, the dot product of the user''s and the item''s implicit-ALS factors (typically 0 to about 1, not bounded); for ease-*, the sum of the EASE item-item weights from the items in the user''s history. Compare only within one user''s list of one model_version: not a rating, not a probability.'),
('column', 'reco.recommendations.because_item_id',
 'The reason to show ("because you liked X"): the user''s liked item (rated at or above the user''s own mean rating, feedback applied) closest to item_id by the model''s item cosine (the similarity of reco.similar_items); never item_id itself, ties to the lower id. NULL when the user has no liked item the model knows.'),
('column', 'reco.recommendations.because_score',
 'Cosine similarity of because_item_id and item_id (-1 to 1, higher = closer): of the ALS item factors for als-* models, of the items'' co-occurrence for ease-* (0 to 1). NULL exactly when because_item_id is NULL.'),
('column', 'reco.recommendations.model_version',
 'The model that produced the row: <family>-<YYYYMMDDTHHMMSSZ>-<6 hex digits of the run id>, e.g. als-20260102T030000Z-1a2b3c; family als or ease, the time is the run''s (UTC; a step run by hand outside a DAG run has <family>-<run folder name>). The same on every row of a publish; its run is the reco.model_runs row with this model_version.'),
('column', 'reco.recommendations.generated_at',
 'The run''s time (the Airflow DAG run''s run_after, UTC, whole seconds; the clock when run outside Airflow): the same on every row of a publish and on a re-run of the same run. Not the moment of the publish, which is reco.model_runs.finished_at.')
) AS d (kind, target, description);

-- reco.similar_items (its table comment: sql/050_similar_items.sql)
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('column', 'reco.similar_items.item_id',
 'The item whose nearest items the row lists (the dataset''s item id; title in reco.items).'),
('column', 'reco.similar_items.similar_item_id',
 'One of the items nearest to item_id; never item_id itself.'),
('column', 'reco.similar_items.rank',
 '1 = most similar, consecutive 1..K per item (K = the run''s similar_k, default 10). Key with item_id.'),
('column', 'reco.similar_items.score',
 'Cosine similarity of the two items (-1 to 1, higher = more similar): of the ALS item factors for model_version als-*; for ease-*, of the items'' co-occurrence columns (users who rated one also rated the other; 0 to 1).'),
('column', 'reco.similar_items.model_version',
 'The model the similarities come from; as reco.recommendations.model_version (the same value in one publish).'),
('column', 'reco.similar_items.generated_at',
 'The run''s time (UTC); as reco.recommendations.generated_at.')
) AS d (kind, target, description);

-- reco.popular_items
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('table', 'reco.popular_items',
 'The fallback lists: the most-rated items of the published run''s data, overall (genre '''') and per genre, up to 100 per list. reco.recommend() serves the overall list to users without a personalised list. Replaced atomically together with reco.recommendations by each publish.'),
('column', 'reco.popular_items.genre',
 ''''' (the empty string) = the overall list; else a genre name from reco.items.genres (an item is in the list of every genre it lists; "(no genres listed)" is left out). Per-genre lists exist only when the dataset has a titles file with genres. Key with rank.'),
('column', 'reco.popular_items.rank',
 '1 = most rated, consecutive 1..100 per genre (fewer when the genre has fewer items); ties go to the lower item_id.'),
('column', 'reco.popular_items.item_id',
 'The item (the dataset''s item id; title in reco.items).'),
('column', 'reco.popular_items.score',
 'How many users rated the item in the run''s data, feedback applied (a like or watch on an unrated item counts, a dislike removes the user''s rating): a count >= 1, not comparable with reco.recommendations.score.'),
('column', 'reco.popular_items.model_version',
 'The published model these lists were built with; as reco.recommendations.model_version.'),
('column', 'reco.popular_items.generated_at',
 'The run''s time (UTC); as reco.recommendations.generated_at.')
) AS d (kind, target, description);

-- reco.items
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('table', 'reco.items',
 'Item titles and genres, from the dataset''s titles file (u.item, movies.dat or movies.csv), merged in by each publish: new items inserted, changed ones updated, none ever deleted, so it also holds items of earlier runs. Formats without a titles file (csv, parquet) add nothing: an item_id of the published tables may have no row here (the v1 views then show a NULL title).'),
('column', 'reco.items.item_id',
 'The dataset''s item id, as in the ratings and the published tables.'),
('column', 'reco.items.title',
 'Display title as the titles file gives it (MovieLens titles end with the year, e.g. "Toy Story (1995)"); never empty.'),
('column', 'reco.items.genres',
 'Genres separated by |, e.g. "Animation|Children''s|Comedy"; empty when the titles file gives none for the item (ml-latest may say "(no genres listed)"). The per-genre lists of reco.popular_items come from it.'),
('column', 'reco.items.updated_at',
 'When the row was inserted or its title or genres last changed; a publish that brings the same title and genres leaves it alone.')
) AS d (kind, target, description);

-- reco.model_runs
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('table', 'reco.model_runs',
 'One row per publish attempt of a pipeline run: the trained model''s parameters and metrics, the data volume and the outcome (status). Written by the publish step, so a run stopped earlier (data-quality gate, a failed step) has no row: see reco.data_quality_runs and reco.stage_timings. The live model is the one of the latest published row (by finished_at).'),
('column', 'reco.model_runs.run_id',
 'Airflow run id of the recommendations DAG run (the run folder name when run outside Airflow). Key with attempt.'),
('column', 'reco.model_runs.attempt',
 '1 for the first publish attempt of the run, one more for each retry or re-run of the same run; the highest is the run''s outcome.'),
('column', 'reco.model_runs.model_version',
 'The model this run trained: <family>-<YYYYMMDDTHHMMSSZ>-<6 hex digits of the run id>, e.g. als-20260102T030000Z-1a2b3c; the value on the rows it published.'),
('column', 'reco.model_runs.dataset',
 'Path of the ratings file the run read.'),
('column', 'reco.model_runs.input_format',
 'Layout of the ratings file as detected or given: ml-100k, ml-1m, ml-latest, csv or parquet.'),
('column', 'reco.model_runs.params',
 'JSON: the chosen configuration. ranking: the published model''s family and parameters (als: rank, regParam, alpha, maxIter; ease: lambda); rating: the reported rating model''s parameters; cv_folds (0 = fixed parameters, no search), seed and holdout_fraction.'),
('column', 'reco.model_runs.metrics',
 'JSON: held-out scores and how the model was chosen. ndcg_at_k, precision_at_k (the published ranking model, at the run''s top_n), rmse, mae, mpe (the rating model); ranking and rating (all their metrics; ranking.why says why the winner won); cv (per-candidate per-fold scores); baselines; champion (the live model scored on the same split); gate (publish true/false and reason); model_family; n_train, n_holdout.'),
('column', 'reco.model_runs.n_ratings',
 'Ratings the run used: lines accepted by ingest, after quarantine and with repeated (user, item) ratings reduced to the latest.'),
('column', 'reco.model_runs.n_users',
 'Distinct users among those ratings.'),
('column', 'reco.model_runs.n_items',
 'Distinct items among those ratings.'),
('column', 'reco.model_runs.n_published',
 'Rows written to reco.recommendations by this attempt; 0 when rejected; NULL while publishing, when failed or abandoned.'),
('column', 'reco.model_runs.status',
 'publishing: under way (its process holds the attempt''s advisory lock); published; rejected: the gate kept the live model, nothing published; failed: the publish raised and was rolled back; abandoned: left at publishing by a process that died, found by a later run.'),
('column', 'reco.model_runs.status_reason',
 'Why, for an attempt that did not publish: the gate''s reason (rejected), the error as "Type: message" (failed), when and by which run it was found (abandoned). NULL when published or publishing.'),
('column', 'reco.model_runs.started_at',
 'When the attempt began publishing (the row was inserted), after training and the gate.'),
('column', 'reco.model_runs.finished_at',
 'When the outcome was recorded (or the attempt was found abandoned); NULL while publishing.')
) AS d (kind, target, description);

-- reco.stage_timings
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('table', 'reco.stage_timings',
 'Where a run''s time went: one row per timed phase of each pipeline step (from the run folder''s timings.jsonl, loaded by the report step, replaced on reload), and one per Airflow task (phase airflow_task, written when the run ends). Spark''s own metrics per stage: reco.spark_stages.'),
('column', 'reco.stage_timings.run_id',
 'Airflow run id of the recommendations DAG run (as reco.model_runs.run_id). Key with stage and phase.'),
('column', 'reco.stage_timings.stage',
 'The pipeline step (prepare, ingest, validate, train, recommend, publish, report); for phase airflow_task, the Airflow task id.'),
('column', 'reco.stage_timings.phase',
 'The part of the step, e.g. read, cross_validation, final_refit, top_n, copy_and_swap; total = the whole step inside its job; airflow_task = Airflow''s span of the task (the gap to total is Spark start-up and task set-up).'),
('column', 'reco.stage_timings.started_at',
 'When the phase started (for airflow_task: the task''s start).'),
('column', 'reco.stage_timings.finished_at',
 'When the phase ended: started_at + seconds (for airflow_task: the task''s end).'),
('column', 'reco.stage_timings.seconds',
 'Wall-clock seconds of the phase, also when it failed (details.failed).'),
('column', 'reco.stage_timings.details',
 'JSON about the phase: what it worked on (rows, source, n, ...), failed: true when it raised, spark: its Spark stages summed (stages, tasks, stage_seconds and the reco.spark_stages metrics). For airflow_task: state, try_number, operator, queued_at and queued_seconds (the wait for a worker slot; null when run in-process).')
) AS d (kind, target, description);

-- reco.spark_stages
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('table', 'reco.spark_stages',
 'Spark''s own metrics per completed stage attempt of a run''s Spark applications, read from their event logs by the report step (replaced on reload). step and phase match reco.stage_timings; their sums per phase are in reco.stage_timings.details->''spark''.'),
('column', 'reco.spark_stages.run_id',
 'Airflow run id of the recommendations DAG run (as reco.stage_timings.run_id).'),
('column', 'reco.spark_stages.app_id',
 'Spark application id from the event log (e.g. local-1767225600000 or app-20260102030000-0001).'),
('column', 'reco.spark_stages.app_name',
 'Spark application name, e.g. reco-train; empty when the log has no application start.'),
('column', 'reco.spark_stages.stage_id',
 'Spark stage id, unique within the application. Key with run_id, app_id and attempt.'),
('column', 'reco.spark_stages.attempt',
 'Stage attempt, 0 = the first; a retried stage has one row per attempt.'),
('column', 'reco.spark_stages.step',
 'The pipeline step whose phase started the stage (as reco.stage_timings.stage); empty for stages outside any timed phase (e.g. set-up).'),
('column', 'reco.spark_stages.phase',
 'That phase (as reco.stage_timings.phase); empty when the stage was untagged.'),
('column', 'reco.spark_stages.name',
 'Spark''s stage name: the action and call site, e.g. "count at NativeMethodAccessorImpl.java:0".'),
('column', 'reco.spark_stages.tasks',
 'Number of tasks in the stage.'),
('column', 'reco.spark_stages.submitted_at',
 'When Spark submitted the stage; NULL when the log lacks the time.'),
('column', 'reco.spark_stages.completed_at',
 'When the stage completed; NULL when the log lacks the time.'),
('column', 'reco.spark_stages.seconds',
 'Stage wall time, completed_at - submitted_at, in seconds; 0 when either is unknown.'),
('column', 'reco.spark_stages.failed',
 'true when the stage attempt ended with a failure reason.'),
('column', 'reco.spark_stages.executor_run_ms',
 'Executor run time summed over the stage''s tasks, in milliseconds (tasks run in parallel: may exceed seconds * 1000).'),
('column', 'reco.spark_stages.gc_ms',
 'JVM garbage-collection time summed over the stage''s tasks, in milliseconds.'),
('column', 'reco.spark_stages.shuffle_read_bytes',
 'Shuffle data read by the stage''s tasks, local and remote, in bytes.'),
('column', 'reco.spark_stages.shuffle_write_bytes',
 'Shuffle data written by the stage''s tasks, in bytes.'),
('column', 'reco.spark_stages.memory_spill_bytes',
 'Data spilled from memory, in bytes (its size in memory, deserialised).'),
('column', 'reco.spark_stages.disk_spill_bytes',
 'The same spills as written to disk, in bytes (serialised, usually smaller).'),
('column', 'reco.spark_stages.input_rows',
 'Records the stage read from its input (files, tables); 0 for a stage reading only shuffle data.'),
('column', 'reco.spark_stages.output_rows',
 'Records the stage wrote to its output (files); 0 for a stage that writes none.')
) AS d (kind, target, description);

-- reco.data_quality_runs (its table comment: sql/010_data_quality.sql)
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('column', 'reco.data_quality_runs.run_id',
 'Airflow run id of the recommendations DAG run. Key with suite; a run recorded again replaces its rows.'),
('column', 'reco.data_quality_runs.suite',
 'The Great Expectations suite (expectations/<suite>.json): ratings, items, feedback (the inputs, validate step) or recommendations (the output, recommend step). A suite that did not run has no row.'),
('column', 'reco.data_quality_runs.success',
 'true when every check of the suite passed; for ratings also the quarantine share within max_quarantine_share. A false ratings, items or feedback row stopped the run before training; a false recommendations row stopped it before publish.'),
('column', 'reco.data_quality_runs.evaluated',
 'Expectations evaluated by the suite (the ratings quarantine-share check is not counted, though a failure of it is in failed).'),
('column', 'reco.data_quality_runs.failed',
 'JSON array, one string per failed check with its observed value, e.g. "expect_column_values_to_be_between(column=rating): observed 3 unexpected values, e.g. [...]"; [] when all passed.'),
('column', 'reco.data_quality_runs.lines_read',
 'Input lines read: rating lines of the ratings file (suite ratings), lines in the feedback inbox files (suite feedback); NULL for items and recommendations.'),
('column', 'reco.data_quality_runs.n_accepted',
 'Ratings kept after quarantine and de-duplication (ratings; = reco.model_runs.n_ratings), feedback events applied (feedback; events for users or items the ratings do not know yet wait for a later run and are not counted); NULL for items and recommendations.'),
('column', 'reco.data_quality_runs.n_rejected',
 'Input lines quarantined, all reasons together, superseded duplicates included (ratings, feedback); NULL for items and recommendations.'),
('column', 'reco.data_quality_runs.quarantine_share',
 'Suite ratings only: malformed lines / lines_read, 0 to 1 (superseded duplicates do not count); the batch is refused above max_quarantine_share (default 0.01). NULL for the other suites.'),
('column', 'reco.data_quality_runs.rejected_by_reason',
 'JSON object: reason code -> lines quarantined for it (wrong_field_count, invalid_user_id, invalid_item_id, invalid_rating, rating_out_of_range, invalid_timestamp, timestamp_in_future, duplicate_superseded, ...); {} when none or not an input suite. As rows: reco.quarantine_reasons.'),
('column', 'reco.data_quality_runs.quarantine_path',
 'Parquet file of the quarantined lines (columns raw, reason) in the run folder: quarantine.parquet (ratings), feedback_quarantine.parquet (feedback); NULL for items and recommendations.'),
('column', 'reco.data_quality_runs.data_docs',
 'The run''s Great Expectations Data Docs page (var/reports/data_docs/<run>/index.html): every expectation and its result.'),
('column', 'reco.data_quality_runs.checked_at',
 'When the row was recorded (the record_quality task, after the suites ran).')
) AS d (kind, target, description);

-- reco.quarantine_reasons
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('view', 'reco.quarantine_reasons',
 'Quarantined input lines per run, input and reason: reco.data_quality_runs.rejected_by_reason of the ratings and feedback suites as rows. A reason with no lines has no row.'),
('column', 'reco.quarantine_reasons.run_id',
 'Airflow run id of the recommendations DAG run.'),
('column', 'reco.quarantine_reasons.checked_at',
 'When the run''s data quality was recorded (reco.data_quality_runs.checked_at).'),
('column', 'reco.quarantine_reasons.reason',
 'Why the lines were quarantined, e.g. wrong_field_count, invalid_rating, rating_out_of_range, duplicate_superseded (README, "Bad input and the data-quality gate").'),
('column', 'reco.quarantine_reasons.n_lines',
 'Lines quarantined for that reason (> 0).'),
('column', 'reco.quarantine_reasons.suite',
 'Which input: ratings or feedback.')
) AS d (kind, target, description);

-- reco.ab_test_results (its table comment: sql/030_ab_tests.sql)
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('column', 'reco.ab_test_results.experiment',
 'Experiment name (parameter of the ab_test_analysis DAG). Key with arm; each analysis replaces the experiment''s rows.'),
('column', 'reco.ab_test_results.arm',
 'Arm name as in the experiment''s assignments.csv.'),
('column', 'reco.ab_test_results.is_control',
 'true for the control arm (parameter control_arm); the lifts of the other arms are against it.'),
('column', 'reco.ab_test_results.users',
 'Users assigned to this arm and no other (users in several arms are left out and counted in rejected).'),
('column', 'reco.ab_test_results.impressions',
 'Impression events of the arm''s users.'),
('column', 'reco.ab_test_results.clicks',
 'Click events of the arm''s users.'),
('column', 'reco.ab_test_results.ctr',
 'Click-through rate, clicks / impressions (0 to 1); NULL when the arm has no impressions.'),
('column', 'reco.ab_test_results.ctr_low',
 'Lower bound of the 95% Wilson interval of ctr; NULL when the arm has no impressions.'),
('column', 'reco.ab_test_results.ctr_high',
 'Upper bound of the 95% Wilson interval of ctr; NULL when the arm has no impressions.'),
('column', 'reco.ab_test_results.abs_lift',
 'ctr - the control''s ctr, in CTR units (0.01 = one percentage point); NULL on the control row and for an arm without impressions.'),
('column', 'reco.ab_test_results.abs_lift_low',
 'Lower bound of the 95% Newcombe interval of abs_lift; NULL as abs_lift.'),
('column', 'reco.ab_test_results.abs_lift_high',
 'Upper bound of the 95% Newcombe interval of abs_lift; NULL as abs_lift.'),
('column', 'reco.ab_test_results.rel_lift',
 'abs_lift / the control''s ctr (0.05 = 5% more clicks per impression); NULL on the control row, for an arm without impressions, or when the control has no clicks.'),
('column', 'reco.ab_test_results.rel_lift_low',
 'abs_lift_low / the control''s ctr; NULL as rel_lift.'),
('column', 'reco.ab_test_results.rel_lift_high',
 'abs_lift_high / the control''s ctr; NULL as rel_lift.'),
('column', 'reco.ab_test_results.p_value',
 'Two-sided p-value of the pooled two-proportion z-test of the arm''s ctr against the control''s (impressions as independent trials); NULL on the control row.'),
('column', 'reco.ab_test_results.significant',
 'p_value < 0.05; NULL on the control row.'),
('column', 'reco.ab_test_results.mde_abs',
 'Minimum detectable absolute CTR lift at these impression counts (alpha 0.05 two-sided, power 0.8, Cohen''s h); NULL on the control row.'),
('column', 'reco.ab_test_results.mde_rel',
 'mde_abs / the control''s ctr; NULL on the control row or when the control has no clicks.'),
('column', 'reco.ab_test_results.impact',
 'JSON business-impact estimate of the arm when the experiment has exactly one treatment arm: inputs (active_customers, annual_revenue_per_customer, baseline_retention, retention_per_ctr_lift), relative_ctr_lift, extra_retained_customers, extra_annual_revenue and their _95ci bounds. JSON null (not SQL NULL) on the control row and when there are several treatment arms.'),
('column', 'reco.ab_test_results.rejected',
 'JSON object: input rows the analysis could not use, by reason (invalid_assignment, conflicting_assignment, conflicting_assignment_event, unassigned_user, invalid_event, invalid_user_id); for the whole experiment, the same on each of its rows; {} when none.'),
('column', 'reco.ab_test_results.run_id',
 'Airflow run id of the ab_test_analysis DAG run that wrote the row.'),
('column', 'reco.ab_test_results.analysed_at',
 'When the analysis wrote the row.')
) AS d (kind, target, description);

-- The contract (sql/090_contract.sql)
SELECT reco.describe(d.kind, d.target, d.description)
FROM (VALUES
('view', 'reco.v1_recommendations',
 'Contract v1 for apps: the published top-N per user with titles and the reason to show. One row per (user_id, rank). Its columns and types never change (a change ships as v2_*); it always shows the latest publish. For one user with the popular fallback, call reco.recommend().'),
('column', 'reco.v1_recommendations.user_id',
 'User id as in the input ratings.'),
('column', 'reco.v1_recommendations.rank',
 'Position in the user''s list by score: 1 = best, consecutive 1..N (N = the run''s top_n, default 10).'),
('column', 'reco.v1_recommendations.item_id',
 'The recommended item; never one the user rated, marked watched or disliked in the data of the run.'),
('column', 'reco.v1_recommendations.title',
 'Title of item_id from reco.items; NULL when the dataset gave no title for it.'),
('column', 'reco.v1_recommendations.score',
 'The model''s affinity of the user for the item, higher = better; unitless, comparable only within one user''s list of one model_version (not a rating or probability).'),
('column', 'reco.v1_recommendations.because_item_id',
 'The reason ("because you liked X"): the user''s liked item (rated at or above the user''s own mean rating) closest to item_id by the model''s item cosine. NULL when the user has no liked item the model knows: show no reason.'),
('column', 'reco.v1_recommendations.because_title',
 'Title of because_item_id from reco.items; NULL when because_item_id is NULL or has no title.'),
('column', 'reco.v1_recommendations.because_score',
 'Cosine similarity of because_item_id and item_id (-1 to 1, higher = closer); NULL when because_item_id is NULL.'),
('column', 'reco.v1_recommendations.model_version',
 'The model behind the list, e.g. als-20260102T030000Z-1a2b3c (<family>-<run time UTC>-<run id hash>); its run is in reco.model_runs.'),
('column', 'reco.v1_recommendations.generated_at',
 'The run''s time (UTC), the same on every row of a publish.'),

('view', 'reco.v1_similar_items',
 'Contract v1 for apps: "because you watched X", each item''s nearest items with titles. One row per (item_id, rank). Its columns and types never change (a change ships as v2_*); it always shows the latest publish.'),
('column', 'reco.v1_similar_items.item_id',
 'The item whose nearest items the row lists.'),
('column', 'reco.v1_similar_items.title',
 'Title of item_id from reco.items; NULL when the dataset gave none.'),
('column', 'reco.v1_similar_items.rank',
 '1 = most similar, consecutive 1..K per item (K = the run''s similar_k, default 10).'),
('column', 'reco.v1_similar_items.similar_item_id',
 'One of the items nearest to item_id; never item_id itself.'),
('column', 'reco.v1_similar_items.similar_title',
 'Title of similar_item_id from reco.items; NULL when the dataset gave none.'),
('column', 'reco.v1_similar_items.score',
 'Cosine similarity of the two items, -1 to 1, higher = more similar (ALS item factors, or for ease-* models the items'' co-occurrence).'),
('column', 'reco.v1_similar_items.model_version',
 'The model the similarities come from (as in reco.v1_recommendations).'),
('column', 'reco.v1_similar_items.generated_at',
 'The run''s time (UTC), the same on every row of a publish.'),

('view', 'reco.v1_popular_items',
 'Contract v1 for apps: the most-rated items of the published run, overall (genre '''') and per genre, up to 100 per list, with titles. One row per (genre, rank). Its columns and types never change (a change ships as v2_*); it always shows the latest publish.'),
('column', 'reco.v1_popular_items.genre',
 ''''' (the empty string) = the overall list; else one genre (as listed in reco.items.genres).'),
('column', 'reco.v1_popular_items.rank',
 '1 = most rated, consecutive per genre; ties go to the lower item_id.'),
('column', 'reco.v1_popular_items.item_id',
 'The item.'),
('column', 'reco.v1_popular_items.title',
 'Title of item_id from reco.items; NULL when the dataset gave none.'),
('column', 'reco.v1_popular_items.score',
 'How many users rated the item in the run''s data (feedback applied): a count, not comparable with reco.v1_recommendations.score.'),
('column', 'reco.v1_popular_items.model_version',
 'The published model these lists were built with.'),
('column', 'reco.v1_popular_items.generated_at',
 'The run''s time (UTC), the same on every row of a publish.'),

('function', 'reco.recommend(bigint,integer,bigint[])',
 'recommend(p_user_id, p_n = 10, p_exclude = ''{}''): one user''s list for an app, best first. When the latest publish has a list for the user: up to p_n of its rows, source personalised, with the reason (because_*); else the overall popular list (reco.v1_popular_items, genre ''''), source popular, because_* NULL. p_exclude: item ids the app knows the user has seen since that publish, left out of either list (a known user whose items are all excluded gets the popular list). rank counts 1..n over the rows returned; score is the model''s affinity (personalised) or the item''s rating count (popular); model_version is the published model. Granted to reco_reader.'),
('function', 'reco.define_contract_views()',
 'Creates or re-points the v1 contract views (reco.v1_recommendations, v1_similar_items, v1_popular_items) at the live tables. Called by each publish after its table swap (a view follows a renamed table) and by sql/090_contract.sql when a view is missing. SECURITY DEFINER, run as its owner; only the owner of reco.recommendations or a member of that role may call it.'),
('function', 'reco.copy_table_metadata(regclass,regclass)',
 'copy_table_metadata(src, dst): gives dst what src has: its owner, every privilege entry (table and column level, PUBLIC and WITH GRANT OPTION included; a grant made by another role is made again by that role when the caller may act as it, else by the owner, with a NOTICE), the table comment and the comments of the columns both have. The publish swap calls it, so a DBA''s GRANT, owner or COMMENT on a published table survives each publish.'),
('function', 'reco.missing_grants(regclass,regclass)',
 'missing_grants(src, dst): the privilege entries of src (table and column level, the owner''s implicit one aside) that dst lacks, one row each: grantor, grantee (0 = PUBLIC), privilege_type, attname (NULL for the table) and the GRANT statement that gives it to dst. Used by reco.copy_table_metadata.')
) AS d (kind, target, description);
