package main

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runningStatus is the status the kubelet reports once every container has started. No
// container really runs: the harness exists to exercise resource preparation.
func runningStatus(pod *v1.Pod, now time.Time) *v1.Pod {
	out := pod.DeepCopy()
	ts := metav1.NewTime(now)
	out.Status.Phase = v1.PodRunning
	out.Status.HostIP = "127.0.0.1"
	out.Status.HostIPs = []v1.HostIP{{IP: "127.0.0.1"}}
	out.Status.StartTime = &ts
	for _, typ := range []v1.PodConditionType{
		v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady,
	} {
		setCondition(&out.Status, v1.PodCondition{
			Type: typ, Status: v1.ConditionTrue, LastTransitionTime: ts,
		})
	}
	out.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		out.Status.ContainerStatuses = append(out.Status.ContainerStatuses, v1.ContainerStatus{
			Name:    c.Name,
			Image:   c.Image,
			Ready:   true,
			Started: new(bool(true)),
			State:   v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: ts}},
		})
	}
	return out
}

func setCondition(status *v1.PodStatus, cond v1.PodCondition) {
	for i := range status.Conditions {
		if status.Conditions[i].Type == cond.Type {
			status.Conditions[i] = cond
			return
		}
	}
	status.Conditions = append(status.Conditions, cond)
}
