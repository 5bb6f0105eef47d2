"""Oracle for attnscope's getavgbehavior: the body of followup-attention's
eye_tracking/post_processing.py getavgbehavior, with pandas and numpy, on the
token x token follow-up matrices RUN/derived/<pass>/<id>.npy (ids in sorted order).

usage: python3 avgbehavior.py MATRIX_DIR OUT_DIR
"""
import os
import sys

import numpy as np
import pandas as pd

input_folder, output_folder = sys.argv[1], sys.argv[2]
names = sorted(f for f in os.listdir(input_folder) if f.endswith(".npy"))
human_followup_matrices = {f[:-4]: np.load(os.path.join(input_folder, f)) for f in names}

all_records = []
entire_dataset = []
for k, matrix in list(human_followup_matrices.items()):
    for i in range(matrix.shape[0]):
        distrib_to_next_token = matrix[i]
        normalized_distrib = distrib_to_next_token
        if np.sum(distrib_to_next_token) > 0:
            normalized_distrib = distrib_to_next_token / np.sum(distrib_to_next_token)
        pos_top_1_target = np.argmax(distrib_to_next_token)
        distance_from_max = pos_top_1_target - i
        all_records.append({
            'unique_data_id': k,
            'current_token_position': i,
            'target_position': pos_top_1_target,
            'prob_to_go_to_top1_target': normalized_distrib[pos_top_1_target],
            'total_tokens': len(distrib_to_next_token),
            'distance_current_to_target': distance_from_max,
        })
        for j in range(len(distrib_to_next_token)):
            entire_dataset.append({
                'unique_data_id': k,
                'current_token_position': i,
                'target_position': j,
                'total_tokens': len(distrib_to_next_token),
                'distance_current_to_target': j - i,
                'prob_to_go_to_target': normalized_distrib[j],
                'followup_abs_value': distrib_to_next_token[j],
                'total_followup_abs_value': np.sum(distrib_to_next_token)
            })
df_distance_in_tokens = pd.DataFrame.from_records(all_records)
df_distance_in_tokens.to_csv(os.path.join(output_folder, "df_distance_in_from_top1_token.csv"), index=False)
df_grouped = df_distance_in_tokens.groupby('distance_current_to_target').agg({'prob_to_go_to_top1_target': ['mean', 'count'], })
df_grouped.columns = ['mean_prob_to_go_to_top1_target', 'number_of_samples']
df_grouped = df_grouped.reset_index()
df_grouped.to_csv(os.path.join(output_folder, "df_base_top1_prob_based_on_distance.csv"), index=False)
df_entire_followup = pd.DataFrame.from_records(entire_dataset)
df_entire_followup.to_csv(os.path.join(output_folder, "df_entire_followup.csv"), index=False)
df_grouped = df_entire_followup.groupby('distance_current_to_target').agg({"prob_to_go_to_target": ["mean", "count"]})
df_grouped.columns = df_grouped.columns.to_flat_index()
df_grouped.columns = ['_'.join(col).strip() for col in df_grouped.columns.values]
df_grouped = df_grouped.reset_index()
df_grouped['distance_current_to_target'] = df_grouped['distance_current_to_target'] * -1
df_grouped.to_csv(os.path.join(output_folder, "df_base_all_prob_based_on_distance_rebuttal.csv"), index=False)
