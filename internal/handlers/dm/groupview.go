package dm

// groupViewChat is what the pages of showing group conversations: members, sender names, system messages need of Chat.
type groupViewChat interface{}
