package kafka

import "github.com/haraqa/haraqa/logsvc"

// groupService is what the group APIs need of the log service; nil until
// consumer groups land in logsvc.
type groupService interface{}

func groupsOf(svc logsvc.Service) groupService { return nil }

func addGroupAPIs(map[int16]api) {}
