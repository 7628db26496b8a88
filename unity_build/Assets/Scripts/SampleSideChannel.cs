// The sample side channel of the RLS3 contract (unity_build/README.md, "Sample side channel"):
// one ASCII JSON record per reset and per step, read by benchmark/sim/unity.py.
// Reference script for com.unity.ml-agents 2.2.1-exp.1; not compiled in this repository.
using System;
using Unity.MLAgents.SideChannels;

namespace RLS3
{
    public class SampleSideChannel : SideChannel
    {
        public static readonly Guid Id = new Guid("6a0bd5b3-9f2e-4c1a-8e7d-2f5c0e3b9d41");

        public SampleSideChannel()
        {
            ChannelId = Id;
        }

        // Python sends nothing on this channel.
        protected override void OnMessageReceived(IncomingMessage msg) { }

        // Queue one info record (JSON, ASCII); it leaves with the agent's next output.
        public void SendRecord(string json)
        {
            using (var msg = new OutgoingMessage())
            {
                msg.WriteString(json);
                QueueMessageToSend(msg);
            }
        }
    }
}
