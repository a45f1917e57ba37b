//! The diesel schema, shared by both backends: every column type here means the same thing in
//! SQLite and PostgreSQL (`Text`, `BigInt` microseconds, `Integer`, `Bool`). Keep it in step with
//! `migrations/sqlite` and `migrations/postgres`; the contract tests read and write every table.

diesel::table! {
    workspaces (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        environment_limit -> Nullable<Integer>,
        created_at -> BigInt,
    }
}

diesel::table! {
    projects (id) {
        id -> Text,
        workspace_id -> Text,
        slug -> Text,
        name -> Text,
        created_at -> BigInt,
        hotfix_patterns -> Nullable<Text>,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        workspace_id -> Text,
        code -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        workspace_id -> Text,
        name -> Text,
        role -> Text,
        project_id -> Nullable<Text>,
        key_hash -> Text,
        hint -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> Text,
        workspace_id -> Text,
        key_id -> Text,
        name -> Text,
        secret -> Text,
        role -> Text,
        project_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    applications (id) {
        id -> Text,
        workspace_id -> Text,
        project_id -> Text,
        code -> Text,
        name -> Text,
        repo -> Nullable<Text>,
        created_at -> BigInt,
        source_provider -> Nullable<Text>,
        source_token -> Nullable<Text>,
    }
}

diesel::table! {
    environments (id) {
        id -> Text,
        workspace_id -> Text,
        code -> Text,
        name -> Text,
        kind -> Text,
        url -> Nullable<Text>,
        position -> Integer,
        team_id -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    application_environments (application_id, environment_id) {
        application_id -> Text,
        environment_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    deployments (seq) {
        seq -> BigInt,
        id -> Text,
        workspace_id -> Text,
        project_id -> Text,
        application_id -> Text,
        environment_id -> Text,
        idempotency_key -> Text,
        payload_fingerprint -> Text,
        status -> Text,
        provider -> Text,
        provider_status -> Text,
        status_at -> BigInt,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        deployed_at -> BigInt,
        external_id -> Nullable<Text>,
        commit_sha -> Nullable<Text>,
        commit_message -> Nullable<Text>,
        commit_timestamp -> Nullable<BigInt>,
        git_ref -> Nullable<Text>,
        branch -> Nullable<Text>,
        run_url -> Nullable<Text>,
        deployed_by -> Nullable<Text>,
        build_number -> Nullable<Text>,
        image -> Nullable<Text>,
        logs_url -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        commit_seen_at -> Nullable<BigInt>,
        rework -> Nullable<Text>,
    }
}

diesel::table! {
    commit_sightings (workspace_id, commit_sha) {
        workspace_id -> Text,
        commit_sha -> Text,
        first_at -> BigInt,
        first_deployment_id -> Nullable<Text>,
        other_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    pipeline_events (seq) {
        seq -> BigInt,
        id -> Text,
        workspace_id -> Text,
        project_id -> Text,
        application_id -> Text,
        environment_id -> Nullable<Text>,
        deployment_id -> Nullable<Text>,
        event -> Text,
        provider -> Text,
        provider_status -> Nullable<Text>,
        status -> Text,
        commit_sha -> Nullable<Text>,
        occurred_at -> BigInt,
        received_at -> BigInt,
        fingerprint -> Text,
    }
}

diesel::table! {
    change_references (project_id, ref_key) {
        project_id -> Text,
        ref_key -> Text,
        workspace_id -> Text,
        status -> Text,
        deployed_at -> Nullable<BigInt>,
        deployed_environment_id -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    deployment_references (deployment_id, ref_key) {
        deployment_id -> Text,
        ref_key -> Text,
        project_id -> Text,
        closing -> Bool,
        position -> Integer,
    }
}

diesel::table! {
    outbox_events (seq) {
        seq -> BigInt,
        id -> Text,
        workspace_id -> Text,
        deployment_id -> Text,
        status_from -> Nullable<Text>,
        status_to -> Text,
        created_at -> BigInt,
        processed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    hooks (id) {
        id -> Text,
        workspace_id -> Text,
        project_id -> Text,
        application_id -> Nullable<Text>,
        environment_id -> Nullable<Text>,
        name -> Text,
        action_type -> Text,
        events -> Text,
        method -> Text,
        target_url -> Text,
        headers -> Text,
        body -> Nullable<Text>,
        secrets -> Text,
        signing_secret -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    hook_deliveries (seq) {
        seq -> BigInt,
        id -> Text,
        workspace_id -> Text,
        hook_id -> Text,
        outbox_event_id -> Nullable<Text>,
        deployment_id -> Nullable<Text>,
        event -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<BigInt>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    hook_attempts (seq) {
        seq -> BigInt,
        delivery_id -> Text,
        number -> Integer,
        at -> BigInt,
        duration_ms -> BigInt,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        response_body -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (hash) {
        hash -> Text,
        workspace_id -> Text,
        api_key_id -> Nullable<Text>,
        person_id -> Nullable<Text>,
        role -> Nullable<Text>,
        refresh_at -> Nullable<BigInt>,
        address -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    people (id) {
        id -> Text,
        issuer -> Text,
        subject -> Text,
        name -> Text,
        email -> Nullable<Text>,
        created_at -> BigInt,
        signed_in_at -> BigInt,
    }
}

diesel::table! {
    integrations (id) {
        id -> Text,
        workspace_id -> Text,
        project_id -> Nullable<Text>,
        provider -> Text,
        name -> Text,
        settings -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_until -> Nullable<BigInt>,
        created_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    integration_deliveries (seq) {
        seq -> BigInt,
        id -> Text,
        integration_id -> Text,
        workspace_id -> Text,
        received_at -> BigInt,
        event -> Nullable<Text>,
        delivery -> Nullable<Text>,
        verdict -> Text,
        reason -> Text,
    }
}

diesel::table! {
    incidents (id) {
        id -> Text,
        workspace_id -> Text,
        project_id -> Text,
        application_id -> Nullable<Text>,
        environment_id -> Nullable<Text>,
        title -> Text,
        severity -> Nullable<Text>,
        url -> Nullable<Text>,
        source -> Text,
        external_id -> Text,
        integration_id -> Nullable<Text>,
        opened_at -> BigInt,
        resolved_at -> Nullable<BigInt>,
        changed_at -> BigInt,
        blamed_deployment_id -> Nullable<Text>,
        blamed_commit -> Nullable<Text>,
        blamed_reference -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        workspace_id -> Nullable<Text>,
        workspace_code -> Nullable<Text>,
        at -> BigInt,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        actor_name -> Nullable<Text>,
        action -> Text,
        target_kind -> Text,
        target_id -> Text,
        target_name -> Nullable<Text>,
        address -> Nullable<Text>,
    }
}

diesel::table! {
    commit_references (project_id, commit_sha, ref_key) {
        project_id -> Text,
        commit_sha -> Text,
        ref_key -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    dora_days (environment_id, day) {
        environment_id -> Text,
        day -> BigInt,
        state -> SmallInt,
        version -> BigInt,
        fence -> Nullable<BigInt>,
        records -> Nullable<Binary>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    workspaces,
    projects,
    teams,
    api_keys,
    sessions,
    people,
    signing_keys,
    applications,
    environments,
    application_environments,
    deployments,
    commit_sightings,
    pipeline_events,
    change_references,
    deployment_references,
    outbox_events,
    hooks,
    hook_deliveries,
    hook_attempts,
    integrations,
    integration_deliveries,
    incidents,
    commit_references,
    dora_days,
    audit_events
);

diesel::joinable!(deployments -> projects (project_id));
diesel::joinable!(deployments -> applications (application_id));
diesel::joinable!(deployments -> environments (environment_id));

diesel::table! {
    instance_settings (name) {
        name -> Text,
        value -> Text,
        updated_at -> BigInt,
    }
}
