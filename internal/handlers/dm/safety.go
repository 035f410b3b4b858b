package dm

// safetyChat is what the pages of reports and blocks need of Chat.
type safetyChat interface{}
