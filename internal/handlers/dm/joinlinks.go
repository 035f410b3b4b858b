package dm

// joinChat is what the pages of join links and join requests need of Chat.
type joinChat interface{}
