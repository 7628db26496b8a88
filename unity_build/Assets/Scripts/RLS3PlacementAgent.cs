// The RLS3 placement agent (unity_build/README.md has the contract this implements).
// Reference script for com.unity.ml-agents 2.2.1-exp.1; not compiled in this repository (no
// Unity editor here): the embedded player (benchmark/sim/unity_player.py) implements the same
// contract and is what the tests run.
//
// On the agent's GameObject: BehaviorParameters (name "RLS3Placement", vector observation 32,
// continuous actions 3), a CameraSensorComponent named "CameraSensor" (RGB, PNG, image_size
// square), a DecisionRequester (period 1), and a component implementing IPlacementScenes.
using System.Collections.Generic;
using UnityEngine;
using Unity.MLAgents;
using Unity.MLAgents.Actuators;
using Unity.MLAgents.Sensors;
using Unity.MLAgents.SideChannels;

namespace RLS3
{
    // The project's scenes: rooms, furniture, designated surfaces, the 9 objects and cameras.
    public interface IPlacementScenes
    {
        // Build the train (0) or test (1) environment's scenes.
        void Build(int environment, int imageSize, bool shadows);
        // A seeded reset: re-draw every scene's 3 active objects, poses and camera.
        void Arrange(uint seed);
        int SceneCount { get; }
        // Make scene `index` active (its camera renders into the CameraSensor).
        void Activate(int index, bool nextCamera);
        // Maybe swap the slot's object for an inactive one (probability swapProb); true if swapped.
        bool MaybeSwap(int slot, float swapProb);
        // Aim the slot's object at action a (README, "Action"); true if the placement is feasible
        // (rests on a designated surface, in bounds, no intersection, moved >= 10 cm); an
        // infeasible placement leaves the scene unchanged.
        bool TryPlace(int slot, float[] a);
        // The 32 floats of README, "Vector observation", for the slot about to move.
        float[] Observation(int slot, float progress, bool swapped);
        // The sample metadata of the active scene as JSON (README, "Sample side channel").
        string SampleJson(int step, string moved);
        string SceneName { get; }
        string ObjectName(int slot);
        void SetCameraEnabled(bool render);
    }

    public class RLS3PlacementAgent : Agent
    {
        SampleSideChannel m_Samples;
        IPlacementScenes m_Scenes;
        bool m_Built;
        int m_T0, m_MaxSteps, m_ScenePeriod, m_Steps, m_Valid, m_Scene;
        float m_SwapProb;
        bool m_Swapped;
        uint? m_PendingSeed;
        int? m_PendingScene;

        public override void Initialize()
        {
            m_Scenes = GetComponent<IPlacementScenes>();
            m_Samples = new SampleSideChannel();
            SideChannelManager.RegisterSideChannel(m_Samples);
            var p = Academy.Instance.EnvironmentParameters;
            // The seed's halves and the start scene arrive with the reset they apply to.
            p.RegisterCallback("seed_low", _ => m_PendingSeed = Seed());
            p.RegisterCallback("seed_high", _ => m_PendingSeed = Seed());
            p.RegisterCallback("scene", v => m_PendingScene = (int)v);
        }

        uint Seed()
        {
            var p = Academy.Instance.EnvironmentParameters;
            return ((uint)p.GetWithDefault("seed_high", 0f) << 16) | (uint)p.GetWithDefault("seed_low", 0f);
        }

        void OnDestroy()
        {
            if (m_Samples != null) SideChannelManager.UnregisterSideChannel(m_Samples);
        }

        public override void OnEpisodeBegin()
        {
            var p = Academy.Instance.EnvironmentParameters;
            if (!m_Built)
            {
                m_T0 = (int)p.GetWithDefault("t0", 32f);
                m_MaxSteps = (int)p.GetWithDefault("max_steps", 8f * m_T0);
                m_SwapProb = p.GetWithDefault("swap_prob", 0.25f);
                m_ScenePeriod = (int)p.GetWithDefault("scene_period", 4f);
                m_Scenes.Build((int)p.GetWithDefault("environment", 0f),
                    (int)p.GetWithDefault("image_size", 64f), p.GetWithDefault("shadows", 0f) > 0.5f);
                m_Scenes.SetCameraEnabled(p.GetWithDefault("render_images", 1f) > 0.5f);
                m_Scenes.Arrange(m_PendingSeed ?? (uint)Academy.Instance.InferenceSeed);
                m_Built = true;
            }
            else if (m_PendingSeed.HasValue)
            {
                m_Scenes.Arrange(m_PendingSeed.Value);
            }
            m_PendingSeed = null;
            m_Scene = m_PendingScene ?? 0;
            m_PendingScene = null;
            m_Scenes.Activate(m_Scene, false);
            m_Steps = m_Valid = 0;
            m_Swapped = false;
            m_Samples.SendRecord(
                $"{{\"event\": \"reset\", \"steps\": 0, \"valid_samples\": 0, \"scene\": \"{m_Scenes.SceneName}\"}}");
        }

        public override void CollectObservations(VectorSensor sensor)
        {
            sensor.AddObservation(m_Scenes.Observation(m_Steps % 3, (float)m_Valid / m_T0, m_Swapped));
        }

        public override void OnActionReceived(ActionBuffers actions)
        {
            var c = actions.ContinuousActions;
            var a = new[] { Mathf.Clamp(c[0], -1f, 1f), Mathf.Clamp(c[1], -1f, 1f), Mathf.Clamp(c[2], -1f, 1f) };
            int slot = m_Steps % 3;
            string moved = m_Scenes.ObjectName(slot);
            bool valid = m_Scenes.TryPlace(slot, a);
            string sample = valid ? m_Scenes.SampleJson(m_Steps, moved) : null;
            if (valid) m_Valid++;
            m_Steps++;
            SetReward(valid ? 1f : -1f);
            bool terminated = m_Valid >= m_T0;
            bool truncated = !terminated && m_Steps >= m_MaxSteps;
            string scene = m_Scenes.SceneName;
            string record =
                $"{{\"event\": \"step\", \"terminated\": {Json(terminated)}, \"truncated\": {Json(truncated)}, " +
                $"\"valid\": {Json(valid)}, \"steps\": {m_Steps}, \"valid_samples\": {m_Valid}, \"scene\": \"{scene}\"" +
                (sample != null ? $", \"sample\": {sample}}}" : "}");
            m_Samples.SendRecord(record);
            if (terminated) { EndEpisode(); return; }
            if (truncated) { EpisodeInterrupted(); return; }
            // The next step: cycle the scene, maybe swap the next slot's object (paper, Fig. 3).
            if (m_Steps % m_ScenePeriod == 0)
            {
                m_Scene = (m_Scene + 1) % m_Scenes.SceneCount;
                m_Scenes.Activate(m_Scene, m_Steps / m_ScenePeriod >= m_Scenes.SceneCount);
            }
            m_Swapped = m_Scenes.MaybeSwap(m_Steps % 3, m_SwapProb);
        }

        static string Json(bool b) => b ? "true" : "false";

        public override void Heuristic(in ActionBuffers actionsOut)
        {
            var c = actionsOut.ContinuousActions;
            for (int i = 0; i < 3; i++) c[i] = Random.Range(-1f, 1f);
        }
    }
}
