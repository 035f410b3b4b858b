package dm

// groupChat is what the pages of creating and managing groups: members, name, lock need of Chat.
type groupChat interface{}
