taskset -c 0 dreamer train --world twx/coin --real-steps 2048 --seed 0 --set run.eval_episodes=10 --set run.eval_interval=100000 --set model.memory=recurrent --no-progress --out twxp_b_new
