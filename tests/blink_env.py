"""A tiny image environment for CNN tests: act 1 when the frame (8x8, or `size` square) is mostly bright."""

import gymnasium as gym
import numpy as np


class Blink(gym.Env):
    action_space = gym.spaces.Discrete(2)

    def __init__(self, size: int = 8):
        self.shape = (1, size, size)
        self.observation_space = gym.spaces.Box(0, 255, self.shape, np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        self.frame = self.np_random.integers(0, 256, self.shape, dtype=np.uint8)
        return self.frame, {}

    def step(self, action):
        reward = float(int(action) == int(self.frame.mean() > 127.5))
        self.steps += 1
        self.frame = self.np_random.integers(0, 256, self.shape, dtype=np.uint8)
        return self.frame, reward, False, self.steps >= 20, {}


gym.register("PolicyPressTest/Blink-v0", entry_point=Blink, max_episode_steps=20)
