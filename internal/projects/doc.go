// Package projects holds skydm's projects and change requests: atproto
// records in their authors' repositories, indexed in SQLite.
//
//   - records.go: the record types, their NSIDs under a configurable
//     authority (default "dev.skydm": dev.skydm.project and
//     dev.skydm.changeRequest, lexicons in lexicons/dev/skydm/), and input
//     validation that mirrors the lexicons (a test checks both agree).
//   - service.go: [Service] writes records through the signed-in user's
//     *atclient.APIClient (createRecord for projects; putRecord with a
//     record key chosen up front for change requests) and indexes them;
//     filing a change request also enqueues its DM to the project's owner
//     (package notify) in the same SQLite transaction.
//   - intents.go: crash-safe filing. The intent (rkey + record) is
//     recorded before the repository write; [Service.RunReconciler]
//     settles intents a crash left unfinished against the repository:
//     indexed with their DM exactly once, or dropped when absent.
//   - store.go: [Store], the index and the queries the pages need.
//
// Pages link to /projects/{owner DID}/{rkey} and
// /change-requests/{requester DID}/{rkey} ([ProjectPath],
// [ChangeRequestPath]); the DM links to the latter under Config.BaseURL.
package projects
