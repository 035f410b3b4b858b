package oauth

import "github.com/skydm/skydm/internal/apperr"

// Reasons carried by the *apperr.Error values this package returns.
const (
	ReasonBadIdentifier      = "BadIdentifier"
	ReasonAccountNotFound    = "AccountNotFound"
	ReasonLookupFailed       = "LookupFailed"
	ReasonHandleNotVerified  = "HandleNotVerified"
	ReasonNoPDS              = "NoPDS"
	ReasonAuthServer         = "AuthServerUnavailable"
	ReasonStateMismatch      = "StateMismatch"
	ReasonAuthRequestUsed    = "AuthRequestUsed"
	ReasonAuthRequestExpired = "AuthRequestExpired"
	ReasonAccessDenied       = "AccessDenied"
	ReasonIssuerMismatch     = "IssuerMismatch"
	ReasonSubjectMismatch    = "SubjectMismatch"
	ReasonScopeMissing       = apperr.ReasonScopeMissing
	ReasonCallbackInvalid    = "CallbackInvalid"
	ReasonTokenExchange      = "TokenExchangeFailed"
	ReasonSessionExpired     = apperr.ReasonSessionExpired
	ReasonRefreshFailed      = "RefreshFailed"
	ReasonPDSFault           = "PDSFault" // the PDS answered in a way that breaks the protocol
)

func newErr(code apperr.Code, reason, msg string, cause error) *apperr.Error {
	return &apperr.Error{Code: code, Reason: reason, Message: msg, Err: cause}
}

func errSessionExpired(cause error) *apperr.Error {
	return newErr(apperr.Unauthorized, ReasonSessionExpired,
		"Your sign-in has ended or was revoked. Please sign in again.", cause)
}
