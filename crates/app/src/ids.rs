//! Typed identifiers of stored records. A `ProjectId` can never be passed where a
//! `DeploymentId` is expected. Values come from the `IdGenerator` port.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(
            feature = "openapi",
            derive(utoipa::ToSchema),
            schema(value_type = String)
        )]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID.
            pub const fn as_uuid(self) -> Uuid {
                self.0
            }

            /// Reads the hyphenated form; `None` for anything else.
            pub fn parse(value: &str) -> Option<Self> {
                Uuid::try_parse(value.trim()).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

id_type!(
    /// A workspace (tenant).
    WorkspaceId
);
id_type!(
    /// A project.
    ProjectId
);
id_type!(
    /// A person who signs in through the OpenID provider.
    PersonId
);
id_type!(
    /// A team.
    TeamId
);
id_type!(
    /// An application (also its pipeline id in Devopness-style hook paths).
    ApplicationId
);
id_type!(
    /// An environment.
    EnvironmentId
);
id_type!(
    /// A deployment.
    DeploymentId
);
id_type!(
    /// A recorded pipeline event.
    EventId
);
id_type!(
    /// An API key record (not the secret).
    ApiKeyId
);
id_type!(
    /// A signing key record (not the secret).
    SigningKeyRecordId
);
id_type!(
    /// An outgoing hook.
    HookId
);
id_type!(
    /// One delivery of one event to one hook; also its `webhook-id`, stable across retries.
    DeliveryId
);
id_type!(
    /// An integration: a provider's webhooks received at its own URL.
    IntegrationId
);
id_type!(
    /// One delivery an integration received.
    ReceivedId
);
id_type!(
    /// An incident.
    IncidentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id =
            DeploymentId::from_uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
        let text = id.to_string();
        assert_eq!(text, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(DeploymentId::parse(&text), Some(id));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        assert_eq!(DeploymentId::parse("dep_abc123"), None);
    }
}
