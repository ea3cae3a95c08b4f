//! Association negotiation as acceptor: who may associate, which
//! presentation contexts are accepted with which transfer syntax, and the
//! A-ASSOCIATE-AC or -RJ sent in reply.

use dicom_ul::pdu::{
    AssociationAC, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderASCEReason,
    AssociationRJServiceUserReason, AssociationRJSource, AssociationRQ,
    PresentationContextProposed, PresentationContextResult, PresentationContextResultReason,
    RequestorRoles, UserVariableItem,
};

use super::association::AcceptedContext;
use super::config::{DimseConfig, Rights};
use super::sop_classes::{self as classes, Service};

/// An accepted association request.
#[derive(Debug)]
pub struct Negotiated {
    pub response: AssociationAC,
    pub contexts: Vec<AcceptedContext>,
    /// The requester's maximum PDU length; 0 means no limit.
    pub peer_max_pdu: u32,
    pub rights: Rights,
}

/// Decides on an A-ASSOCIATE-RQ: an A-ASSOCIATE-AC, possibly with every
/// context rejected, or an A-ASSOCIATE-RJ with the reason the standard
/// defines for the failed check.
pub fn negotiate(
    request: &AssociationRQ,
    config: &DimseConfig,
) -> Result<Negotiated, AssociationRJ> {
    if request.protocol_version & 1 == 0 {
        let reason = AssociationRJServiceProviderASCEReason::ProtocolVersionNotSupported;
        return Err(reject(AssociationRJSource::ServiceProviderASCE(reason)));
    }
    if request.application_context_name.trim_end_matches('\0') != classes::APPLICATION_CONTEXT {
        let reason = AssociationRJServiceUserReason::ApplicationContextNameNotSupported;
        return Err(reject(AssociationRJSource::ServiceUser(reason)));
    }
    if config.check_called_ae_title && request.called_ae_title.trim() != config.ae_title.trim() {
        let reason = AssociationRJServiceUserReason::CalledAETitleNotRecognized;
        return Err(reject(AssociationRJSource::ServiceUser(reason)));
    }
    let Some(rights) = config.rights_of(&request.calling_ae_title) else {
        let reason = AssociationRJServiceUserReason::CallingAETitleNotRecognized;
        return Err(reject(AssociationRJSource::ServiceUser(reason)));
    };

    let roles = requested_roles(request);
    let mut results = Vec::new();
    let mut contexts = Vec::new();
    for proposed in &request.presentation_contexts {
        let result = decide_context(proposed, rights, &roles, config);
        if result.reason == PresentationContextResultReason::Acceptance {
            contexts.push(AcceptedContext {
                id: proposed.id,
                abstract_syntax: trim_uid(&proposed.abstract_syntax).to_string(),
                transfer_syntax: result.transfer_syntax.clone(),
            });
        }
        results.push(result);
    }

    let response = AssociationAC {
        protocol_version: 1,
        calling_ae_title: request.calling_ae_title.clone(),
        called_ae_title: request.called_ae_title.clone(),
        application_context_name: classes::APPLICATION_CONTEXT.to_string(),
        presentation_contexts: results,
        user_variables: acceptor_variables(config, &roles),
    };
    Ok(Negotiated {
        response,
        contexts,
        peer_max_pdu: peer_max_pdu(&request.user_variables),
        rights,
    })
}

/// Describes what makes the request's presentation context IDs invalid:
/// each must be odd (1 to 255) and used once, which also caps a request at
/// 128 contexts. A reply to such a request would be ambiguous, so the
/// listener aborts instead of negotiating.
pub fn invalid_context_ids(request: &AssociationRQ) -> Option<String> {
    let mut seen = [false; 256];
    for context in &request.presentation_contexts {
        let id = context.id;
        if id % 2 == 0 {
            return Some(format!("presentation context ID {id} is even"));
        }
        if seen[id as usize] {
            return Some(format!("presentation context ID {id} is used twice"));
        }
        seen[id as usize] = true;
    }
    None
}

/// The A-ASSOCIATE-RJ sent when the listener is at its association limit.
pub fn reject_busy() -> AssociationRJ {
    use dicom_ul::pdu::AssociationRJServiceProviderPresentationReason as Reason;
    AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(Reason::LocalLimitExceeded),
    }
}

fn reject(source: AssociationRJSource) -> AssociationRJ {
    AssociationRJ {
        result: AssociationRJResult::Permanent,
        source,
    }
}

/// SCP/SCU role selection items of the request, by SOP class UID.
fn requested_roles(request: &AssociationRQ) -> Vec<(String, RequestorRoles)> {
    request
        .user_variables
        .iter()
        .filter_map(|item| match item {
            UserVariableItem::ScuScpRoleSelectionSubItem(uid, roles) => {
                Some((trim_uid(uid).to_string(), *roles))
            }
            _ => None,
        })
        .collect()
}

fn decide_context(
    proposed: &PresentationContextProposed,
    rights: Rights,
    roles: &[(String, RequestorRoles)],
    config: &DimseConfig,
) -> PresentationContextResult {
    let abstract_syntax = trim_uid(&proposed.abstract_syntax);
    let (allowed, supported) = match classes::service_of(abstract_syntax) {
        Some(service) => (
            service_allowed(service, rights),
            classes::SERVICE_TRANSFER_SYNTAXES,
        ),
        None if is_storage_class(abstract_syntax, config) => {
            let requester_is_scp = roles
                .iter()
                .any(|(uid, role)| uid == abstract_syntax && role.scp);
            let allowed = rights.store || (requester_is_scp && rights.retrieve);
            (allowed, classes::STORAGE_TRANSFER_SYNTAXES)
        }
        None => {
            return context_result(
                proposed,
                PresentationContextResultReason::AbstractSyntaxNotSupported,
                "",
            );
        }
    };
    if !allowed {
        return context_result(proposed, PresentationContextResultReason::UserRejection, "");
    }

    let chosen = proposed
        .transfer_syntaxes
        .iter()
        .map(|ts| trim_uid(ts))
        .find(|ts| supported.contains(ts));
    match chosen {
        Some(ts) => context_result(proposed, PresentationContextResultReason::Acceptance, ts),
        None => context_result(
            proposed,
            PresentationContextResultReason::TransferSyntaxesNotSupported,
            "",
        ),
    }
}

fn service_allowed(service: Service, rights: Rights) -> bool {
    match service {
        Service::Verification => true,
        Service::Find => rights.query,
        Service::Move | Service::Get => rights.retrieve,
        Service::Commitment => rights.store,
    }
}

fn is_storage_class(uid: &str, config: &DimseConfig) -> bool {
    classes::is_standard_storage_class(uid)
        || (config.accept_unknown_sop_classes && classes::could_be_storage_class(uid))
}

fn context_result(
    proposed: &PresentationContextProposed,
    reason: PresentationContextResultReason,
    transfer_syntax: &str,
) -> PresentationContextResult {
    // A rejected context still carries a transfer syntax field; echoing the
    // first proposal keeps strict requesters from failing to parse it.
    let transfer_syntax = if transfer_syntax.is_empty() {
        proposed
            .transfer_syntaxes
            .first()
            .map(|ts| trim_uid(ts).to_string())
            .unwrap_or_else(|| classes::IMPLICIT_VR_LITTLE_ENDIAN.to_string())
    } else {
        transfer_syntax.to_string()
    };
    PresentationContextResult {
        id: proposed.id,
        reason,
        transfer_syntax,
    }
}

fn acceptor_variables(
    config: &DimseConfig,
    roles: &[(String, RequestorRoles)],
) -> Vec<UserVariableItem> {
    let mut items = vec![
        UserVariableItem::MaxLength(config.max_pdu_length),
        UserVariableItem::ImplementationClassUID(classes::IMPLEMENTATION_CLASS_UID.to_string()),
        UserVariableItem::ImplementationVersionName(
            classes::IMPLEMENTATION_VERSION_NAME.to_string(),
        ),
    ];
    // Every proposed role is accepted: as C-GET SCP this node needs the
    // requester to be the storage SCP, and other roles change nothing here.
    items.extend(
        roles
            .iter()
            .map(|(uid, role)| UserVariableItem::ScuScpRoleSelectionSubItem(uid.clone(), *role)),
    );
    items
}

pub fn peer_max_pdu(items: &[UserVariableItem]) -> u32 {
    items
        .iter()
        .find_map(|item| match item {
            UserVariableItem::MaxLength(length) => Some(*length),
            _ => None,
        })
        .unwrap_or(0)
}

pub fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' ']).trim_start()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(calling: &str, contexts: Vec<PresentationContextProposed>) -> AssociationRQ {
        AssociationRQ {
            protocol_version: 1,
            calling_ae_title: calling.into(),
            called_ae_title: "TESSERA".into(),
            application_context_name: classes::APPLICATION_CONTEXT.into(),
            presentation_contexts: contexts,
            user_variables: vec![UserVariableItem::MaxLength(16384)],
        }
    }

    fn context(id: u8, abstract_syntax: &str, ts: &[&str]) -> PresentationContextProposed {
        PresentationContextProposed {
            id,
            abstract_syntax: abstract_syntax.into(),
            transfer_syntaxes: ts.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn open_config() -> DimseConfig {
        DimseConfig {
            accept_unknown_callers: true,
            ..DimseConfig::default()
        }
    }

    #[test]
    fn unknown_caller_gets_calling_ae_rejection() {
        let error = negotiate(&request("NOBODY", vec![]), &DimseConfig::default()).unwrap_err();

        let expected = AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CallingAETitleNotRecognized,
        );
        assert_eq!(error.source, expected);
        assert_eq!(error.result, AssociationRJResult::Permanent);
    }

    #[test]
    fn wrong_called_ae_is_rejected() {
        let mut rq = request("MODALITY", vec![]);
        rq.called_ae_title = "OTHER".into();

        let error = negotiate(&rq, &open_config()).unwrap_err();

        let expected = AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CalledAETitleNotRecognized,
        );
        assert_eq!(error.source, expected);
    }

    #[test]
    fn one_bad_context_leaves_others_accepted() {
        let contexts = vec![
            context(1, "1.2.840.10008.5.1.4.1.1.2", &["1.2.840.10008.1.2.4.50"]),
            context(3, "1.2.840.10008.5.1.4.1.1.2", &["1.2.3.4.5.6"]),
            context(
                5,
                classes::VERIFICATION,
                &[classes::IMPLICIT_VR_LITTLE_ENDIAN],
            ),
            context(
                7,
                "1.2.840.10008.5.1.4.31",
                &[classes::IMPLICIT_VR_LITTLE_ENDIAN],
            ),
        ];

        let negotiated = negotiate(&request("MODALITY", contexts), &open_config()).unwrap();

        let reasons: Vec<_> = negotiated
            .response
            .presentation_contexts
            .iter()
            .map(|c| c.reason.clone())
            .collect();
        assert_eq!(
            reasons,
            vec![
                PresentationContextResultReason::Acceptance,
                PresentationContextResultReason::TransferSyntaxesNotSupported,
                PresentationContextResultReason::Acceptance,
                PresentationContextResultReason::AbstractSyntaxNotSupported,
            ]
        );
        assert_eq!(
            negotiated.contexts[0].transfer_syntax,
            "1.2.840.10008.1.2.4.50"
        );
        assert_eq!(negotiated.peer_max_pdu, 16384);
    }

    #[test]
    fn peer_without_query_right_gets_user_rejection() {
        let mut config = DimseConfig::default();
        config.peers.push(super::super::config::DimsePeer {
            ae_title: "STORER".into(),
            host: String::new(),
            port: 0,
            store: true,
            query: false,
            retrieve: false,
            move_destination: false,
        });
        let contexts = vec![context(
            1,
            classes::STUDY_ROOT_FIND,
            &[classes::IMPLICIT_VR_LITTLE_ENDIAN],
        )];

        let negotiated = negotiate(&request("STORER", contexts), &config).unwrap();

        let reason = &negotiated.response.presentation_contexts[0].reason;
        assert_eq!(*reason, PresentationContextResultReason::UserRejection);
    }

    #[test]
    fn repeated_or_even_context_ids_are_invalid() {
        let echo = |id| {
            context(
                id,
                classes::VERIFICATION,
                &[classes::IMPLICIT_VR_LITTLE_ENDIAN],
            )
        };
        let all_odd: Vec<_> = (0..128).map(|i| echo(2 * i + 1)).collect();
        let repeated = vec![echo(1), echo(3), echo(1)];
        let even = vec![echo(1), echo(4)];

        assert_eq!(invalid_context_ids(&request("MODALITY", all_odd)), None);
        let error = invalid_context_ids(&request("MODALITY", repeated)).unwrap();
        assert!(error.contains("ID 1 is used twice"), "{error}");
        let error = invalid_context_ids(&request("MODALITY", even)).unwrap();
        assert!(error.contains("ID 4 is even"), "{error}");
    }

    #[test]
    fn private_storage_class_follows_config() {
        let contexts = vec![context(
            1,
            "1.3.6.1.4.1.9590.100.1.2.1",
            &[classes::EXPLICIT_VR_LITTLE_ENDIAN],
        )];
        let mut config = open_config();
        config.accept_unknown_sop_classes = false;

        let strict = negotiate(&request("MODALITY", contexts.clone()), &config).unwrap();
        let open = negotiate(&request("MODALITY", contexts), &open_config()).unwrap();

        assert!(strict.contexts.is_empty());
        assert_eq!(open.contexts.len(), 1);
    }
}
