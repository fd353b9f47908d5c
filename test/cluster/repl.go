package cluster

// MyReplUser and MyReplPassword are the replication account every node of a
// MyCluster has (REPLICATION SLAVE on *.*, from any host), for tests that
// attach a node to another primary themselves.
const (
	MyReplUser     = myReplUser
	MyReplPassword = myReplPassword
)
